"""Provider secret formats (gitleaks' vendored rules and our own): each kind is redacted in
plain text, with nothing of the secret left and nothing else changed. Tokens are generated
(seeded), so no token-shaped literal lives in the repository."""

from __future__ import annotations

import random
import string

import pytest

from mcp_harness.redaction import REDACTED, contains_secret, redact
from mcp_harness.secret_rules import gitleaks_rules

_rng = random.Random(12)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
UPPER = string.ascii_uppercase + string.digits


def _r(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


PLAIN = "saw {} here"
# kind -> (text around the secret, the secret)
KINDS: dict[str, tuple[str, str]] = {
    "gitlab-pat": (PLAIN, f"glpat-{_r(20)}"),
    "google-api-key": (PLAIN, f"AIza{_r(35)}"),
    "npm-token": (PLAIN, f"npm_{_r(36)}"),
    "stripe-live-secret": (PLAIN, f"sk_live_{_r(24)}"),
    "stripe-restricted": (PLAIN, f"rk_live_{_r(24)}"),
    "huggingface": (PLAIN, f"hf_{_r(34, string.ascii_letters)}"),
    "twilio-api-key": (PLAIN, f"SK{_r(32, HEX)}"),
    "sendgrid": (PLAIN, f"SG.{_r(22)}.{_r(43)}"),
    "shopify-access-token": (PLAIN, f"shpat_{_r(32, HEX)}"),
    "shopify-shared-secret": (PLAIN, f"shpss_{_r(32, HEX)}"),
    "dockerhub-pat": (PLAIN, f"dckr_pat_{_r(27)}"),
    "github-fine-grained-pat": (PLAIN, f"github_pat_{_r(22)}_{_r(59)}"),
    "pypi-upload-token": (PLAIN, "pypi-AgEIcHlwaS5vcmc" + _r(60)),
    "digitalocean-pat": (PLAIN, f"dop_v1_{_r(64, HEX)}"),
    "doppler": (PLAIN, f"dp.pt.{_r(43)}"),
    "linear": (PLAIN, f"lin_api_{_r(40)}"),
    "postman": (PLAIN, f"PMAK-{_r(24, HEX)}-{_r(34, HEX)}"),
    "pulumi": (PLAIN, f"pul-{_r(40, HEX)}"),
    "rubygems": (PLAIN, f"rubygems_{_r(48, HEX)}"),
    "databricks": (PLAIN, f"dapi{_r(32, HEX)}"),
    "grafana-service-account": (PLAIN, f"glsa_{_r(32)}_{_r(8, HEX)}"),
    "sentry-user-token": (PLAIN, f"sntryu_{_r(64, HEX)}"),
    "age-secret-key": (PLAIN, "AGE-SECRET-KEY-1" + _r(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L")),
    "terraform-cloud": (PLAIN, f"{_r(14)}.atlasv1.{_r(67)}"),
    "planetscale": (PLAIN, f"pscale_tkn_{_r(43)}"),
    "heroku-v2": (PLAIN, f"HRKU-AA{_r(58)}"),
    "vault-service-token": (PLAIN, f"hvs.{_r(90)}"),
    "perplexity": (PLAIN, f"pplx-{_r(48)}"),
    "alibaba-access-key": (PLAIN, f"LTAI{_r(20, string.ascii_lowercase + string.digits)}"),
    "notion": (PLAIN, "ntn_" + _r(11, string.digits) + _r(35)),
    "square": (PLAIN, "EAAA" + _r(60)),
    "slack-bot": (PLAIN, f"xoxb-{_r(12, string.digits)}-{_r(12, string.digits)}-{_r(24)}"),
    "github-pat": (PLAIN, f"ghp_{_r(36)}"),
    "aws-access-key-id": (PLAIN, "AKIA" + _r(16, string.ascii_uppercase + "234567")),
    "anthropic": (PLAIN, "sk-ant-api03-" + _r(93) + "AA"),
    "openai-project": (PLAIN, "sk-proj-" + _r(48) + "T3BlbkFJ" + _r(48)),
    "azure-storage-account-key": (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={};EndpointSuffix=x.net",
        _r(86) + "==",
    ),
    "curl-user-password": ("curl -u alice:{} https://api.example.com/v1", _r(14)),
    "mysql-password-flag": ("mysql -u root -p{} app < dump.sql", _r(12)),
    "service-account-key-id": (
        '{{"type": "service_account", "private_key_id": "{}"}}',
        _r(40, HEX),
    ),
    "mailchimp": ("MAILCHIMP_KEY={}", _r(32, HEX) + "-us20"),
    "telegram-bot": ("TELEGRAM_BOT={}", _r(10, string.digits) + ":AA" + _r(33)),
    "new-relic-user-key": ("NEWRELIC_USER={}", f"NRAK-{_r(27, UPPER)}"),
}


def test_at_least_thirty_kinds() -> None:
    assert len(KINDS) >= 30
    rules, _ = gitleaks_rules()
    assert len(rules) > 200  # the vendored rule set is loaded whole


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_provider_secret_is_redacted(kind: str) -> None:
    around, secret = KINDS[kind]
    text = around.format(secret)
    out = redact(text)
    assert secret not in out, out
    assert REDACTED in out
    head, tail = around.split("{}")
    assert out.startswith(head.replace("{{", "{")[: len(head) // 2])  # the rest is kept
    assert out.endswith(tail.replace("}}", "}")[len(tail) // 2 :])
    assert contains_secret(text)
    assert redact(out) == out  # idempotent


def test_every_kind_in_one_blob() -> None:
    blob = "\n".join(around.format(secret) for around, secret in KINDS.values())
    out = redact(blob)
    assert out.count("\n") == blob.count("\n")
    for _, secret in KINDS.values():
        assert secret not in out


def test_service_account_json_key() -> None:
    body = "\\n".join(_r(64, ALNUM + "+/") for _ in range(6))
    key = (
        '{"type": "service_account", "project_id": "demo", "private_key_id": "'
        + _r(40, HEX)
        + '", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
        + body
        + '\\n-----END PRIVATE KEY-----\\n", "client_email": "bot@demo.iam.gserviceaccount.com"}'
    )
    out = redact(key)
    assert body not in out and '"project_id": "demo"' in out
    assert "bot@demo.iam.gserviceaccount.com" in out


@pytest.mark.parametrize(
    "text",
    [
        "mysql -u root -p mydb",
        "curl -u alice https://api.example.com",
        "AccountName=acct;EndpointSuffix=core.windows.net",
        "echo $GITLAB_TOKEN | glab auth login --stdin",
        "export STRIPE_KEY=${STRIPE_KEY}",
        "shasum -a 256 dist/app.tar.gz",
        "npm_config_cache=/tmp/npm",
        "git log --oneline -3",
    ],
)
def test_look_alikes_are_kept(text: str) -> None:
    assert redact(text) == text

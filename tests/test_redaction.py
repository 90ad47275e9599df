"""Tests for mcp_harness.redaction."""

from __future__ import annotations

import random
import string

import pytest

from mcp_harness.redaction import REDACTED, contains_secret, redact

R = REDACTED
C = "…" + REDACTED  # shaped-token suffix

# Realistic-looking fake secrets (none of these are live credentials).
AKIA = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ANT = "sk-ant-api03-Xy9_kLmN0pQrStUvWxYz-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AA"
OAI = "sk-abcdEFGHijklMNOPqrstUVWX0123456789abcdEFGHijkl"
OAI_PROJ = "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90_Uv-Wx"
GHP = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_BODY = (
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi6Zqq5e4n0AZ2T6Y2/8mDkz2hN\n"
    "q7Jbl5Y1iB3h6cFXpCqJ9kW8mVf5X+u6y7pZqK0cQ9tC5e6v7w8x9y0z1A2B3C4D\n"
    "5E6F7G8H9I0J1K2L3M4N5O6P7Q8R9S0T1U2V3W4X5Y6Z7a8b9c0d1e2f3g4h5i==\n"
)


def _check(text: str, expected: str, secret: str) -> None:
    out = redact(text)
    assert out == expected
    assert secret not in out
    assert contains_secret(text)
    assert redact(out) == out, "redaction must be idempotent"
    assert not contains_secret(out)


# (input, expected, the part that must disappear)
AWS_CASES = [
    (f"AWS_ACCESS_KEY_ID={AKIA} # prod", f"AWS_ACCESS_KEY_ID=AKIA{C} # prod", AKIA),
    (f"aws_access_key_id = {AKIA}\n", f"aws_access_key_id = AKIA{C}\n", AKIA),
    ("key ASIAY34FZKBOKMUTVV7A used", f"key ASIA{C} used", "ASIAY34FZKBOKMUTVV7A"),
    (f'{{"AccessKeyId": "{AKIA}"}}', f'{{"AccessKeyId": "AKIA{C}"}}', AKIA),
    (f"aws_secret_access_key = {AWS_SECRET}", f"aws_secret_access_key = {R}", AWS_SECRET),
    (
        f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}; ls",
        f"export AWS_SECRET_ACCESS_KEY={R}; ls",
        AWS_SECRET,
    ),
    (f"AWS_SECRET_ACCESS_KEY='{AWS_SECRET}'", f"AWS_SECRET_ACCESS_KEY='{R}'", AWS_SECRET),
]

TOKEN_CASES = [
    (f"using key {ANT} now", f"using key sk-ant-{C} now", ANT),
    (f"Bad key: '{ANT}'", f"Bad key: 'sk-ant-{C}'", ANT),
    (f"openai {OAI} end", f"openai sk-{C} end", OAI),
    (f"key={OAI_PROJ[:0]}x {OAI_PROJ}", f"key=x sk-proj-{C}", OAI_PROJ),
    (f"git push https://{GHP}@github.com/o/r", f"git push https://ghp_{C}@github.com/o/r", GHP),
    (
        "gho_abcdefghijklmnopqrstuvwxyz0123456789",
        f"gho_{C}",
        "abcdefghijklmnopqrstuvwxyz0123456789",
    ),
    ("(ghu_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345)", f"(ghu_{C})", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    ("ghs_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345 x", f"ghs_{C} x", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    ("ghr_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", f"ghr_{C}", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    (
        "pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz ok",
        f"pat github_pat_{C} ok",
        "11ABCDEFG0123456789",
    ),
    (
        "slack xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx !",
        f"slack xoxb-{C} !",
        "1234567890123",
    ),
    ("xoxp-1234567890-1234567890", f"xoxp-{C}", "1234567890-1234567890"),
    ("xoxa-2-1234567890-abcdef", f"xoxa-{C}", "1234567890-abcdef"),
    ("xoxr-1234567890-abcdef", f"xoxr-{C}", "1234567890-abcdef"),
    ("xoxs-1234567890-abcdef", f"xoxs-{C}", "1234567890-abcdef"),
    (
        "POST https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX done",
        f"POST https://hooks.slack.com/services/{C} done",
        "B00000000/XXXXXXXX",
    ),
    (f"jwt {JWT} end", f"jwt eyJ{C} end", JWT[10:]),
    (f'{{"id_jwt": "{JWT}"}}', f'{{"id_jwt": "eyJ{C}"}}', JWT[10:]),
]

HEADER_CASES = [
    ("Authorization: Bearer abc.def", f"Authorization: Bearer {R}", "abc.def"),
    (
        f'curl -H "Authorization: Bearer {JWT}" https://api',
        f'curl -H "Authorization: Bearer {R}" https://api',
        JWT[10:],
    ),
    ("authorization: bearer tok123\r\nhost: x", f"authorization: bearer {R}\r\nhost: x", "tok123"),
    (
        "AUTHORIZATION: BASIC dXNlcjpwYXNzd29yZA==",
        f"AUTHORIZATION: BASIC {R}",
        "dXNlcjpwYXNzd29yZA",
    ),
    ("Proxy-Authorization: Basic dXNlcjpwYXNz", f"Proxy-Authorization: Basic {R}", "dXNlcjpwYXNz"),
    ('{"Authorization": "Bearer abc123"}', f'{{"Authorization": "Bearer {R}"}}', "abc123"),
    ("Authorization: token ghp_x", f"Authorization: token {R}", "ghp_x"),
    (
        '"cmd": "curl -H \\"Authorization: Bearer s3cr3t\\" x"',
        f'"cmd": "curl -H \\"Authorization: Bearer {R}\\" x"',
        "s3cr3t",
    ),
]

PEM_CASES = [
    (
        f"before\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----\nafter",
        f"before\n-----BEGIN RSA PRIVATE KEY-----\n{R}\n-----END RSA PRIVATE KEY-----\nafter",
        "MIIEpAIBAAKCAQEA",
    ),
    (
        f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}-----END PRIVATE KEY-----",
        f"-----BEGIN PRIVATE KEY-----\n{R}\n-----END PRIVATE KEY-----",
        "q7Jbl5Y1iB3h",
    ),
    (
        f"-----BEGIN EC PRIVATE KEY-----\r\n{PEM_BODY.replace(chr(10), chr(13) + chr(10))}"
        "-----END EC PRIVATE KEY-----\r\n",
        f"-----BEGIN EC PRIVATE KEY-----\r\n{R}\r\n-----END EC PRIVATE KEY-----\r\n",
        "q7Jbl5Y1iB3h",
    ),
    (
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}-----END OPENSSH PRIVATE KEY-----",
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{R}\n-----END OPENSSH PRIVATE KEY-----",
        "5E6F7G8H",
    ),
    (
        f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{PEM_BODY}-----END ENCRYPTED PRIVATE KEY-----",
        f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{R}\n-----END ENCRYPTED PRIVATE KEY-----",
        "5E6F7G8H",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        "DEK-Info: AES-128-CBC,ABCDEF01\n\n"
        f"{PEM_BODY}-----END RSA PRIVATE KEY-----",
        f"-----BEGIN RSA PRIVATE KEY-----\n{R}\n-----END RSA PRIVATE KEY-----",
        "ABCDEF01",
    ),
    # JSON-escaped key in a transcript row: the escaped newlines are kept around the marker
    (
        '{"key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\nkqhkiG9w0==\\n-----END PRIVATE'
        ' KEY-----\\n"}',
        f'{{"key": "-----BEGIN PRIVATE KEY-----\\n{R}\\n-----END PRIVATE KEY-----\\n"}}',
        "MIIEvQIBADANBg",
    ),
    # truncated output: header without footer still hides the key lines that follow
    (
        f"$ cat id_rsa | head\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}$ echo done",
        f"$ cat id_rsa | head\n-----BEGIN RSA PRIVATE KEY-----\n{R}\n$ echo done",
        "q7Jbl5Y1iB3h",
    ),
]

ASSIGN_CASES = [
    ("password=hunter2", f"password={R}", "hunter2"),
    ("passwd=hunter2 next", f"passwd={R} next", "hunter2"),
    ("pwd=hunter2&user=bob", f"pwd={R}&user=bob", "hunter2"),
    ("token=abc123", f"token={R}", "abc123"),
    ("secret=abc123", f"secret={R}", "abc123"),
    ("api_key=abc123", f"api_key={R}", "abc123"),
    ("apikey=abc123", f"apikey={R}", "abc123"),
    (
        "https://api.x.io/v1?q=1&access_token=abc123&x=2",
        f"https://api.x.io/v1?q=1&access_token={R}&x=2",
        "abc123",
    ),
    ("client_secret: abc123", f"client_secret: {R}", "abc123"),
    ("DB_PASSWORD=s3cr3t!", f"DB_PASSWORD={R}", "s3cr3t!"),
    ("export GITHUB_TOKEN=ghp_abc123", f"export GITHUB_TOKEN={R}", "ghp_abc123"),
    ('export OPENAI_API_KEY="sk-abc"', f'export OPENAI_API_KEY="{R}"', "sk-abc"),
    ("PGPASSWORD='p@ss w0rd' psql -h db", f"PGPASSWORD='{R}' psql -h db", "p@ss w0rd"),
    ('{"password": "hunter2", "user": "bob"}', f'{{"password": "{R}", "user": "bob"}}', "hunter2"),
    ('{"password":"hu\\"nter2"}', f'{{"password":"{R}"}}', "nter2"),
    ('{"accessToken": "abc123"}', f'{{"accessToken": "{R}"}}', "abc123"),
    ('{"user":"bob","password":"hunter2"}', f'{{"user":"bob","password":"{R}"}}', "hunter2"),
    ('"{\\"password\\": \\"hunter2\\"}"', f'"{{\\"password\\": \\"{R}\\"}}"', "hunter2"),
    ("password = hunter2", f"password = {R}", "hunter2"),
    ("AUTH_TOKEN: 'abc123'", f"AUTH_TOKEN: '{R}'", "abc123"),
    ("password: hunter2\nuser: bob", f"password: {R}\nuser: bob", "hunter2"),
    ("  db_password = 'hunter2'  # ini", f"  db_password = '{R}'  # ini", "hunter2"),
    ("Password=hunter2;Server=db;", f"Password={R};Server=db;", "hunter2"),
    ("connect(user='bob', password='hunter2')", f"connect(user='bob', password='{R}')", "hunter2"),
    ("x-api-key: abc123", f"x-api-key: {R}", "abc123"),
    ('secret_key := "abc"', f'secret_key := "{R}"', "abc"),
    ('"args": "login --token=\\"abc123\\""', f'"args": "login --token=\\"{R}\\""', "abc123"),
    ("token=[placeholder]", f"token={R}", "placeholder"),
    ("password=changeme", f"password={R}", "changeme"),
]

FLAG_CASES = [
    ("mysql --password xyz -p foo", f"mysql --password {R} -p foo", "xyz"),
    ("mysql --password=xyz db", f"mysql --password={R} db", "xyz"),
    ("gh auth login --token abc", f"gh auth login --token {R}", "abc"),
    ("tool --api-key 'k e y' --verbose", f"tool --api-key '{R}' --verbose", "k e y"),
    ('tool --client-secret "abc" -v', f'tool --client-secret "{R}" -v', "abc"),
    ("vault login -token abc123", f"vault login -token {R}", "abc123"),
    ("cmd --db-password\thunter2", f"cmd --db-password\t{R}", "hunter2"),
]

URL_CASES = [
    ("https://user:pass@host/", f"https://user:{R}@host/", "pass"),
    (
        "git clone https://bob:s3cr3t@github.com/o/r.git",
        f"git clone https://bob:{R}@github.com/o/r.git",
        "s3cr3t",
    ),
    (
        "DATABASE_URL=postgres://app:p4ss@db:5432/app",
        f"DATABASE_URL=postgres://app:{R}@db:5432/app",
        "p4ss",
    ),
    ("redis://:hunter2@cache:6379/0", f"redis://:{R}@cache:6379/0", "hunter2"),
    (
        "https://x-access-token:ghs_abc@github.com",
        f"https://x-access-token:{R}@github.com",
        "ghs_abc",
    ),
    ("amqp://u:p%40ss@mq/vhost", f"amqp://u:{R}@mq/vhost", "p%40ss"),
]

ALL_CASES = (
    AWS_CASES + TOKEN_CASES + HEADER_CASES + PEM_CASES + ASSIGN_CASES + FLAG_CASES + URL_CASES
)


@pytest.mark.parametrize(("text", "expected", "secret"), AWS_CASES)
def test_aws(text: str, expected: str, secret: str) -> None:
    _check(text, expected, secret)


@pytest.mark.parametrize(("text", "expected", "secret"), TOKEN_CASES)
def test_prefixed_tokens(text: str, expected: str, secret: str) -> None:
    _check(text, expected, secret)


@pytest.mark.parametrize(("text", "expected", "secret"), HEADER_CASES)
def test_authorization_header(text: str, expected: str, secret: str) -> None:
    _check(text, expected, secret)


@pytest.mark.parametrize(("text", "expected", "secret"), PEM_CASES)
def test_pem_private_key(text: str, expected: str, secret: str) -> None:
    _check(text, expected, secret)


@pytest.mark.parametrize(("text", "expected", "secret"), ASSIGN_CASES)
def test_assignments(text: str, expected: str, secret: str) -> None:
    _check(text, expected, secret)


@pytest.mark.parametrize(("text", "expected", "secret"), FLAG_CASES)
def test_cli_flags(text: str, expected: str, secret: str) -> None:
    _check(text, expected, secret)


@pytest.mark.parametrize(("text", "expected", "secret"), URL_CASES)
def test_url_credentials(text: str, expected: str, secret: str) -> None:
    _check(text, expected, secret)


@pytest.mark.parametrize(("text", "expected", "secret"), ALL_CASES)
def test_line_structure_preserved(text: str, expected: str, secret: str) -> None:
    out = redact(f"first line\n  {text}  \nlast line")
    assert out == f"first line\n  {expected}  \nlast line"
    if "PRIVATE KEY" not in text:
        assert out.count("\n") == text.count("\n") + 2


def test_all_cases_in_one_blob() -> None:
    blob = "\n".join(text for text, _, _ in ALL_CASES)
    assert redact(blob) == "\n".join(expected for _, expected, _ in ALL_CASES)


NON_SECRETS = [
    "commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39\nAuthor: Jane Doe <jane@example.com>\n"
    "Date:   Mon Jan 1 12:00:00 2024 +0000\n\n    Fix token refresh in auth client\n",
    "3f2a9c1 Merge pull request #42 from org/fix-password-reset",
    "a1b2c3d (HEAD -> main, origin/main) Rename tokenizer module",
    "550e8400-e29b-41d4-a716-446655440000",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  empty.txt",
    "sha256sum: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "echo aGVsbG8gd29ybGQ= | base64 -d",
    "dG9rZW4=",
    "total 48\ndrwxr-xr-x  5 bob staff   160 Jan  1 12:00 .\n"
    "-rw-------  1 bob staff  1675 Jan  1 12:00 id_rsa\n"
    "-rw-r--r--  1 bob staff   398 Jan  1 12:00 id_rsa.pub\n"
    "-rw-r--r--  1 bob staff    12 Jan  1 12:00 tokens.txt\n",
    'Traceback (most recent call last):\n  File "/app/auth.py", line 12, in get_token\n'
    "    return cache[key]\nKeyError: 'token'\n",
    'Traceback (most recent call last):\n  File "/usr/lib/python3.11/getpass.py", line 77\n'
    "ValueError: invalid literal for int() with base 10: 'abc'\n",
    "docker login --username bob --password-stdin < pw.txt",
    "podman login --password-file /run/secrets/registry quay.io",
    "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')",
    "The secretary filed the report.",
    "TOKENIZERS_PARALLELISM=false python train.py",
    "export PATH=/usr/local/bin:/usr/bin:$PATH",
    "export PYTHONPATH=/work/main",
    "task-list --risk-level=high --disk-usage",
    "pip install scikit-learn; ask-for-help",
    "docker pull python@sha256:4b9a0a1a9e1f4f6c8b0e1d2c3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a",
    "FROM python:3.11-slim@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "curl https://example.com/api/v1/items?page=2&per_page=50",
    "Fetching https://github.com/org/repo.git",
    "ssh deploy@10.0.0.5 'uptime'",
    "git clone git@github.com:org/repo.git",
    "scp ./build.tar.gz ci@build-host:/srv/artifacts/",
    "Contact support@example.com or admin@corp.example.org",
    "mysql -u root -p mydb",
    "Enter password: ",
    "password=\nuser=bob",
    "password= \n",
    'password=""',
    "PWD=/home/bob/project\nOLDPWD=/home/bob\nSHELL=/bin/bash\nHOME=/home/bob",
    "max_tokens=256 temperature=0.7 input_tokens: 1200",
    "kubectl get secrets -n prod\nNAME       TYPE     DATA   AGE\ndb-creds   Opaque   2      5d",
    "uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)",
    "postgres://db.internal:5432/app",
    "https://[::1]:8443/health",
    "Ran 42 tests in 3.21s\n\nOK",
    "npm WARN deprecated request@2.88.2: request has been deprecated",
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQsw\n"
    "-----END CERTIFICATE-----",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bob@laptop",
    "std::secret::Key::new() called; token::Kind",
    "Authorization: Bearer",
    f"Authorization: Bearer {R}",
    f"sk-ant-{C} and ghp_{C} and AKIA{C}",
    "AKIA123 is too short; ASIAxyz too",
    "eyJhbGciOiJIUzI1NiJ9 is only a header",
    "Tokens used: 1532 (prompt 1200, completion 332)",
    "    at com.example.auth.TokenService.refresh(TokenService.java:88)",
    "drwxr-xr-x 2 root root 4096 Nov 27 15:16 secrets.d",
    "[2024-01-01T12:00:00Z] INFO request_id=7f3c2a1b status=200 duration_ms=35",
    "",
    "\n\n\r\n",
]


def test_negative_corpus_is_large_enough() -> None:
    assert len(NON_SECRETS) >= 40


@pytest.mark.parametrize("text", NON_SECRETS)
def test_non_secrets_unchanged(text: str) -> None:
    assert redact(text) == text
    assert not contains_secret(text)


def test_negative_corpus_blob_unchanged() -> None:
    blob = "\n".join(NON_SECRETS)
    assert redact(blob) == blob


def test_shape_examples_from_spec() -> None:
    assert redact("sk-ant-api03-abcdefghijklmnop") == "sk-ant-…[REDACTED]"
    assert redact("ghp_" + "x" * 36) == "ghp_…[REDACTED]"
    assert redact("AKIA" + "X" * 16) == "AKIA…[REDACTED]"
    assert redact("password=hunter2") == "password=[REDACTED]"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [REDACTED]"


def test_secrets_mixed_with_text_keep_the_rest() -> None:
    text = f"a {GHP} b {AKIA} c https://u:p@h/ d password=x e"
    assert redact(text) == f"a ghp_{C} b AKIA{C} c https://u:{R}@h/ d password={R} e"


def test_large_random_input_runs() -> None:
    rng = random.Random(1234)
    big = "".join(rng.choices(string.printable, k=10_000_000))
    out = redact(big)
    assert redact(out) == out
    line = "".join(rng.choices(string.ascii_letters + string.digits + " =:-_/\"'.@", k=1_000_000))
    redact(line)


@pytest.mark.parametrize(
    "unit",
    [
        "a",
        "a_",
        "password=",
        "--password ",
        '"password": "',
        "Authorization: ",
        "a://b:",
        "-----BEGIN PRIVATE KEY-----\n",
        "sk-ant-",
        "eyJ",
        '"',
        "\\",
    ],
)
def test_pathological_repetitions_run(unit: str) -> None:
    redact(unit * (200_000 // len(unit)))

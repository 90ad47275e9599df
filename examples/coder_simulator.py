"""The seed README's LLM coder simulator, composed in Python from shared ops and run offline.

Two chained experts: the decision expert says WHAT to do from the live terminal screen
("text:…" to type, "ctrl:…" to press keys), the command expert says HOW ("echo hello world",
"Enter"); a switch routes by the decision's prefix, and the loop repeats until the validator
sees the command's output. Runs on the offline kernel (no network) in a real tmux session:

    python examples/coder_simulator.py
"""

from __future__ import annotations

import sys
import tempfile

from mcp_harness import (
    Session,
    ft_const,
    ft_expand,
    ft_expert,
    ft_format,
    ft_recurrent,
    ft_sequential,
    ft_switch,
    ft_tmux_capture_pane,
    ft_tmux_create_session,
    ft_tmux_send_keys,
    ft_tmux_send_text,
    ft_tmux_wait,
    ft_unsqueeze,
    ft_validate_regex,
    make_tensor,
)

STEPS = 6
TASK = "task: say hello world"


def build(root: str):
    """The coder graph of the seed README (shapes [1, STEPS] until the loop reduces them)."""
    # Decision expert: terminal observation -> action_type:hint
    decision_exp = make_tensor(
        [
            ["say hello world\nprompt", TASK + "\n$", "text:type the shell command"],
            ["echo typed\nprompt", TASK + "\n$ echo hello world", "ctrl:press Enter"],
        ],
        root,
        name="decision",
    )
    # Cmd expert: hint -> real command
    cmd_exp = make_tensor(
        [
            ["type shell command", "text:type the shell command", "echo hello world"],
            ["press enter", "ctrl:press Enter", "Enter"],
        ],
        root,
        name="cmd",
    )
    workspace = ft_expand(ft_unsqueeze(ft_tmux_create_session(name="coder"), -1), [1, STEPS])
    capture_op = ft_tmux_capture_pane(workspace, name="screen")  # [1, STEPS] live terminal text
    task = ft_expand(ft_unsqueeze(ft_const([TASK]), -1), [1, STEPS])
    observation = ft_format(task, capture_op, "{0}\n{1}", name="observation")
    decision_expert = ft_expert(observation, decision_exp, topk=2, name="decision")
    cmd_expert = ft_expert(decision_expert, cmd_exp, topk=2, name="command")
    switched_send = ft_switch(
        decision_expert,
        [
            ("text", ft_tmux_send_text(cmd_expert, workspace, name="type")),
            ("ctrl", ft_tmux_send_keys(cmd_expert, workspace, name="press")),
        ],
        name="act",
    )
    settled = ft_tmux_wait(workspace, name="settled")  # back at the prompt: the screen after
    validator = ft_validate_regex(
        ft_sequential(switched_send, settled, name="acted"), r"^hello world\s*$", name="done"
    )
    output = ft_recurrent(validator, name="output")  # [1] reduced
    return output, decision_expert, cmd_expert


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="coder-") as root:
        output, decision, command = build(root)
        with Session(kernel="offline") as session:
            [result] = session.forward(output)
            [element] = session.elements(output)
            steps = element.meta["iterations"]
            for step in range(steps):
                what, how = (session.run.element(n, (0, step)) for n in (decision, command))
                print(f"step {step}: decided {what.text!r}, then {how.text!r}")
            print(f"passed: {element.status.ok} after {steps} step(s)")
            print("final screen:")
            print(result.strip())
            return 0 if element.status.ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The seed's symbolic ops (attention, merge, stack, fork, pack_dir) and speculative
multi-action dispatch, built with the Python API and run for real."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from mcp_harness import (
    Session,
    ft_const,
    ft_expand,
    ft_expert,
    ft_recurrent,
    ft_tmux_create_session,
    ft_tmux_run,
    ft_tmux_speculative_run,
    ft_unsqueeze,
    ft_validate_exit_status,
    make_tensor,
    st_attention,
    st_fork,
    st_merge,
    st_pack_dir,
    st_stack,
)
from mcp_harness.kernels.base import Example, KernelReply, KernelRequest, successive
from mcp_harness.kernels.offline import OfflineKernel
from mcp_harness.kernels.runner import KernelRunner
from mcp_harness.runtime.gradients import Gradients
from mcp_harness.runtime.ops import OPS, ShapeError

NEW_OPS = ["st_attention", "st_merge", "st_stack", "st_fork", "st_pack_dir"]


def test_new_ops_are_registered_with_docstrings() -> None:
    for name in [*NEW_OPS, "ft_tmux_speculative_run"]:
        assert len((OPS[name].__doc__ or "").split()) > 10, name


def test_attention_is_causal_and_its_gradient_reaches_what_was_attended() -> None:
    x = ft_const([["a", "b", "c"]])
    causal, full = st_attention(x), st_attention(x, "full", " ")
    with Session() as session:
        assert session.forward(causal) == ["a", "a\nb", "a\nb\nc"]
        assert session.forward(full) == ["a b c"] * 3
        session.coefficients(causal).sum().backward()
        assert session.coefficients(x).grad.tolist() == [[3.0, 2.0, 1.0]]
    with pytest.raises(ShapeError, match="mask 'sideways'"):
        st_attention(x, "sideways")


def test_merge_reduces_an_axis_and_splits_a_target_back() -> None:
    x = ft_const([["ls", "-la"], ["git", "init"]])
    merged = st_merge(x, 1, " ")
    assert merged.shape == (2,)
    with Session() as session:
        assert session.forward(merged) == ["ls -la", "git init"]
        grads = Gradients()
        asyncio.run(merged.op.symbolic_backward(session.run, merged, {(0,): "ls -a"}, grads))
        assert grads.targets[x.name] == {(0, 0): "ls", (0, 1): "-a"}
        session.coefficients(merged)[1].backward()
        assert session.coefficients(x).grad.tolist() == [[0, 0], [1, 1]]


def test_stack_routes_elements_and_gradients_to_their_input() -> None:
    a, b = ft_const(["a0", "a1"]), ft_const(["b0", "b1"])
    stacked = st_stack(a, b, dim=1)
    assert stacked.shape == (2, 2)
    with Session() as session:
        assert session.forward(stacked) == ["a0", "b0", "a1", "b1"]
        (session.coefficients(stacked) * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
        assert session.coefficients(a).grad.tolist() == [1, 3]
        assert session.coefficients(b).grad.tolist() == [2, 4]
    with pytest.raises(ShapeError, match="input 0 has shape"):
        st_stack(a, ft_const(["x"]))


def test_fork_merges_the_branches_gradients() -> None:
    x = ft_const(["draft"])
    forked = st_fork(x, copies=3)
    assert forked.shape == (3, 1)
    with Session() as session:
        assert session.forward(forked) == ["draft"] * 3
        session.coefficients(forked).sum().backward()
        assert session.coefficients(x).grad.tolist() == [3.0]  # summed over the branches
        grads = Gradients()
        targets = {(0, 0): "final", (1, 0): "other", (2, 0): "final"}
        asyncio.run(forked.op.symbolic_backward(session.run, forked, targets, grads))
        assert grads.targets[x.name] == {(0,): "final"}  # the majority


def test_pack_dir_packs_a_directory_and_stays_inside(tmp_path: Path) -> None:
    (tmp_path / "proj" / "src").mkdir(parents=True)
    (tmp_path / "proj" / "src" / "app.py").write_text("print('hi')\n")
    (tmp_path / "proj" / "README").write_text("hello\n")
    (tmp_path / "proj" / ".git").mkdir()
    (tmp_path / "proj" / ".git" / "HEAD").write_text("ref")
    packed = st_pack_dir(ft_const(["proj", "../.."]))
    with Session(workdir=tmp_path) as session:
        text, outside = session.forward(packed)
        meta = [e.meta for e in session.elements(packed)]
    assert text.startswith("Files:\n- README\n- src/app.py\n")
    assert "## File: src/app.py\n```\nprint('hi')\n\n```" in text and ".git" not in text
    assert meta[0]["files"] == 2
    assert outside.startswith("cannot pack '../..': it is outside")


def test_speculative_run_tries_candidates_until_one_validates(tmp_path: Path, runtime) -> None:
    (tmp_path / "notes.txt").write_text("alpha\n")
    session_node = ft_tmux_create_session(ft_const([str(tmp_path)]), name="spec")
    candidates = ft_const(["cat missing.txt\n\nwc -l notes.txt\ncat notes.txt"])
    tried = ft_tmux_speculative_run(candidates, session_node, pattern=r"^alpha$")
    with Session() as session:
        [screen] = session.forward(tried)
        [element] = session.elements(tried)
    assert element.status.ok and "alpha" in screen
    assert [(t["command"], t["exit_code"]) for t in element.meta["tried"]] == [
        ("cat missing.txt", 1),
        ("wc -l notes.txt", 0),  # exits 0 but its screen does not show the pattern yet
        ("cat notes.txt", 0),
    ]
    assert element.meta["chosen"] == 2
    with pytest.raises(ShapeError, match="bad pattern"):
        ft_tmux_speculative_run(candidates, session_node, pattern="(")


class Offering(OfflineKernel):
    """The offline kernel offering several candidates per call (`successive`), counting calls."""

    def __init__(self, offer: bool) -> None:
        super().__init__()
        self.offer, self.calls = offer, 0

    async def complete(self, request: KernelRequest) -> KernelReply:
        self.calls += 1
        return successive(self.answer, request) if self.offer else self.answer(request)


def test_an_expert_loop_tries_offered_candidates_before_asking_again(
    tmp_path: Path, runtime
) -> None:
    (tmp_path / "notes.txt").write_text("the notes\n")
    task = "show the project notes"
    commands = ["cat notes-0.txt", "cat notes-1.txt", "cat notes.txt", "cat notes-3.txt"]
    runs = {}
    for offer in (False, True):
        exp = make_tensor(
            [[f"notes\nshow\nv{i}", task, c] for i, c in enumerate(commands)],
            tmp_path / f"exp-{offer}",
        )
        command = ft_expert(
            ft_expand(ft_unsqueeze(ft_const([task]), -1), [1, 4]), exp, topk=4, candidates=3
        )
        session_node = ft_tmux_create_session(ft_const([str(tmp_path)]), name=f"offer{offer:d}")
        steps = ft_expand(ft_unsqueeze(session_node, -1), [1, 4])
        result = ft_recurrent(ft_validate_exit_status(ft_tmux_run(command, steps)))
        kernel = Offering(offer)
        with Session(kernel=KernelRunner(kernel)) as session:
            session.forward(result)
            [passed] = session.elements(result)
            elements = session.elements(command)
        runs[offer] = (passed.status.ok, [e.text for e in elements if e is not None], kernel.calls)
        if offer:
            assert [e.meta.get("speculative") for e in elements[:3]] == [None, 0, 0]
            assert [e.meta["answered"] for e in elements[:3]] == [0, 1, 2]
    assert runs[False][:2] == runs[True][:2] == (True, commands[:3])
    assert (runs[False][2], runs[True][2]) == (3, 1)
    with pytest.raises(ShapeError, match="candidates is 0"):
        ft_expert(ft_const([task]), exp, candidates=0)


def test_successive_offers_what_the_kernel_would_answer_next() -> None:
    examples = tuple(Example(f"show notes {i}", f"cat n{i}", 1.0 - i / 10) for i in range(3))
    request = KernelRequest("t", "show notes", examples, candidates=5)
    reply = successive(OfflineKernel().answer, request)
    assert [reply.text, *(a.text for a in reply.alternatives)] == ["cat n0", "cat n1", "cat n2"]
    single = successive(OfflineKernel().answer, KernelRequest("t", "show notes", examples))
    assert single.text == "cat n0" and single.alternatives == ()


def test_dense_and_sparse_views_round_trip() -> None:
    from mcp_harness import to_dense, to_sparse

    nested = [["a", None, "c"], [None, None, "f"]]
    sparse = to_sparse(nested)
    assert sparse == [((0, 0), "a"), ((0, 2), "c"), ((1, 2), "f")]
    assert to_dense(sparse, (2, 3)) == nested
    assert to_dense([], ()) is None and to_sparse("x") == [((), "x")]


def test_directory_loader_batches_files(tmp_path: Path) -> None:
    from mcp_harness import DirectoryLoader
    from mcp_harness.errors import HarnessError

    for name in ["b.txt", "a.txt", "sub/c.txt", ".hidden"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name.upper())
    loader = DirectoryLoader(tmp_path, batch_size=2)
    batches = list(loader)
    assert len(loader) == 2
    assert batches[0] == {"path": ["a.txt", "b.txt"], "text": ["A.TXT", "B.TXT"]}
    assert batches[1] == {"path": ["sub/c.txt"], "text": ["SUB/C.TXT"]}
    shuffled = [p for b in DirectoryLoader(tmp_path, 2, seed=1) for p in b["path"]]
    assert sorted(shuffled) == ["a.txt", "b.txt", "sub/c.txt"]
    assert len(DirectoryLoader(tmp_path, 2, drop_last=True)) == 1
    with pytest.raises(HarnessError, match="no files match"):
        DirectoryLoader(tmp_path, pattern="*.md")

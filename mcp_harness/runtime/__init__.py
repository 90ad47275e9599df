"""The harness runtime: FutureTensor graphs of typed ops, evaluated lazily and concurrently.

`status` encodes element outcomes as floats, `future` holds graph nodes and the evaluation of a
run (pull-based, each element at most once per forward pass), `ops/` the registered ops with
their shape contracts and gradient rules, `autograd` the torch bridge (first- and second-order),
`gradients` the symbolic gradients and their backward walk, `reflection` the backward-dispatch
policies, `parameters` experience tensors as torch parameters, `graph` the JSON spec and its
static check, `module` module directories.
"""

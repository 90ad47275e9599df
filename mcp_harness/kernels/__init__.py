"""LLM kernels: the backends an `ft_expert` element calls, behind one async protocol."""

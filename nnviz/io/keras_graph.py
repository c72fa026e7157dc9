"""A Keras model config as a chain of layers with residual blocks (keras_read.py builds it).

parse_graph() reads a Sequential, or a Functional graph (legacy `inbound_nodes` lists or Keras
3 `__keras_tensor__` nodes) that is a chain in which an Add adds a block's input to its output.
"""
from __future__ import annotations

import re


class KerasReadError(ValueError):
    pass


def fail(msg):
    raise KerasReadError(msg)


def snake(name: str) -> str:
    """Keras's to_snake_case (the group names of a .keras weights file)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class Node:
    def __init__(self, cfg, where):
        if not isinstance(cfg, dict) or not isinstance(cfg.get("class_name"), str):
            fail(f"{where}: a layer entry needs a class_name")
        self.cls = cfg["class_name"]
        self.config = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
        self.name = str(cfg.get("name") or self.config.get("name") or where)
        self.inputs = _inbound(cfg.get("inbound_nodes"), self.name)

    def __repr__(self):
        return f"{self.cls} {self.name!r}"

    @property
    def label(self):
        return f"layer {self.name!r} ({self.cls})"


def _history(t):
    if isinstance(t, dict):                                  # Keras 3 __keras_tensor__
        h = (t.get("config") or {}).get("keras_history")
        if isinstance(h, list) and h:
            return [str(h[0])]
        return []
    if isinstance(t, list) and t and isinstance(t[0], str):  # legacy [name, node, tensor, {}]
        return [t[0]]
    if isinstance(t, list):
        return [n for x in t for n in _history(x)]
    return []


def _inbound(nodes, name):
    if not nodes:
        return []
    if not isinstance(nodes, list) or len(nodes) != 1:
        fail(f"layer {name!r} is called {len(nodes) if isinstance(nodes, list) else '?'} times "
              f"(shared layers are not supported)")
    node = nodes[0]
    if isinstance(node, dict):
        return _history(node.get("args", []))
    return _history(node)


def _io_names(v):
    if isinstance(v, list) and v and isinstance(v[0], str):
        return [v[0]]
    if isinstance(v, list):
        return [x[0] for x in v if isinstance(x, list) and x and isinstance(x[0], str)]
    return []


def parse_graph(model_config):
    """(ordered ops, input Node or None, snake-name map): ops are Nodes or
    ("residual", add Node, [ops]) for x + f(x)."""
    if not isinstance(model_config, dict):
        fail("model_config is not a JSON object")
    cls = model_config.get("class_name")
    cfg = model_config.get("config")
    if cls not in ("Sequential", "Functional", "Model") or not isinstance(cfg, dict):
        fail(f"the model is a {cls!r}; nnviz reads Keras Sequential and Functional models")
    raw = cfg.get("layers")
    if not isinstance(raw, list) or not raw:
        fail("the model config has no layers")
    if len(raw) > 10_000:
        fail(f"the model config lists {len(raw):,} layers")
    nodes = [Node(c, f"layer {i}") for i, c in enumerate(raw)]
    weight_names = _weight_names(nodes, sequential=cls == "Sequential")
    if cls == "Sequential":
        inp = nodes[0] if nodes[0].cls == "InputLayer" else None
        ops = [n for n in nodes if n.cls != "InputLayer"]
        return ops, inp, cfg, weight_names
    by = {}
    for n in nodes:
        if n.name in by:
            fail(f"two layers are named {n.name!r}")
        by[n.name] = n
    ins, outs = _io_names(cfg.get("input_layers")), _io_names(cfg.get("output_layers"))
    if len(ins) != 1 or len(outs) != 1:
        fail(f"the model has {len(ins)} inputs and {len(outs)} outputs; nnviz reads models "
              f"with one of each")
    for n in nodes:
        for i in n.inputs:
            if i not in by:
                fail(f"{n.label} reads from an unknown layer {i!r}")
    uses = {}
    for n in nodes:
        for i in n.inputs:
            uses[i] = uses.get(i, 0) + 1

    def ancestors(name):
        seen, todo = set(), [name]
        while todo:
            cur = todo.pop()
            if cur not in seen:
                seen.add(cur)
                todo.extend(by[cur].inputs)
        return seen

    def path(to, stop):
        out, cur = [], to
        while cur != stop:
            n = by[cur]
            if n.cls == "InputLayer":
                if stop is None:
                    break
                fail(f"cannot follow the graph from {stop!r} to {to!r}")
            if n.cls == "Add":
                if len(n.inputs) != 2:
                    fail(f"{n.label} adds {len(n.inputs)} tensors; nnviz residuals add two")
                a, b = n.inputs
                if a in ancestors(b):
                    skip, body = a, b
                elif b in ancestors(a):
                    skip, body = b, a
                else:
                    fail(f"{n.label} adds two branches; nnviz residuals add a block's input "
                          f"to its output (no projection shortcut)")
                if uses.get(skip, 0) != 2:
                    fail(f"{n.label}: the skip input {skip!r} feeds other layers too")
                out.append(("residual", n, path(body, skip)))
                cur = skip
            else:
                if len(n.inputs) != 1:
                    fail(f"{n.label} has {len(n.inputs)} inputs; nnviz reads chains")
                if uses.get(n.inputs[0], 0) > 1 and not _is_skip(n.inputs[0], by, uses):
                    fail(f"layer {n.inputs[0]!r} feeds several layers; nnviz reads chains")
                out.append(n)
                cur = n.inputs[0]
        return out[::-1]

    ops = path(outs[0], None)
    inp = by[ins[0]]
    return ops, inp, cfg, weight_names


def _is_skip(name, by, uses):
    return uses.get(name) == 2 and any(n.cls == "Add" and name in n.inputs for n in by.values())


def _weight_names(nodes, sequential):
    """Node name -> the group a .keras weights file gives it (snake class name + counter)."""
    used, out = {}, {}
    for n in nodes:
        if sequential and n.cls == "InputLayer":
            continue
        base = snake(n.cls)
        if base in used:
            used[base] += 1
            out[n.name] = f"{base}_{used[base]}"
        else:
            used[base] = 0
            out[n.name] = base
    return out

"""The computational graph of one example, with the engine's values, gradients and the text.

`record(net, x, target)` runs `LabNet.trace` on one example and turns its arrays into nodes
(inputs, weights, biases, each multiply, each sum, each activation, the loss), edges with their
local derivatives, and the forward and backward steps with the expression or the chain-rule
product written out with numbers. Every number comes from the trace; the text only formats it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .names import DOT, MINUS, d, fmt, fmt_factor, neuron, pre, product, sub
from .net import LabNet, Trace

FORWARD, BACKWARD, UPDATE = "forward", "backward", "update"


@dataclass
class Node:
    key: str
    kind: str            # input, target, weight, bias, mul, sum, act, loss
    label: str
    value: float
    layer: int = -1      # Dense layer it belongs to (-1: inputs, n_layers: loss)
    unit: int = -1       # unit j in that layer (or input / output index)
    src: int = -1        # for weights and multiplies: the input index i of w[j, i]
    grad: float | None = None
    forward: str = ""
    backward: str = ""


@dataclass
class Edge:
    src: str
    dst: str
    local: float | None  # ∂dst/∂src from the engine, None where there is none (targets)
    label: str           # ∂dst/∂src written as names


@dataclass
class Step:
    phase: str
    keys: tuple[str, ...]   # nodes whose value (forward) or gradient (backward) appears here
    title: str
    text: str


@dataclass
class Record:
    net: LabNet
    trace: Trace
    nodes: dict[str, Node]
    edges: list[Edge]
    steps: list[Step] = field(default_factory=list)
    param_keys: list[str] = field(default_factory=list)    # flat, in net.parameters() order

    def node(self, key: str) -> Node:
        return self.nodes[key]


def _act_expr(kind, a, z, zv, av, digits):
    f = lambda v: fmt(v, digits)
    if kind == "sigmoid":
        return f"{a} = \u03c3({z}) = 1/(1 + e^({MINUS}{z})) = \u03c3({f(zv)}) = {f(av)}"
    if kind == "tanh":
        return f"{a} = tanh({z}) = tanh({f(zv)}) = {f(av)}"
    if kind == "relu":
        return f"{a} = max(0, {z}) = max(0, {f(zv)}) = {f(av)}"
    return f"{a} = {z} = {f(av)}   (linear)"


def _act_derivative(kind, a, z, av, dv, digits):
    """The text for ∂a/∂z; dv is the engine's value."""
    f = lambda v: fmt(v, digits)
    head = f"{d(a, z)} = "
    if kind == "sigmoid":
        av_ = fmt_factor(av, digits)
        return head + f"{a}(1 {MINUS} {a}) = {av_}{DOT}(1 {MINUS} {av_}) = {f(dv)}"
    if kind == "tanh":
        return head + f"1 {MINUS} {a}\u00b2 = 1 {MINUS} {fmt_factor(av, digits)}\u00b2 = {f(dv)}"
    if kind == "relu":
        return head + f"(1 if {z} > 0 else 0) = {f(dv)}"
    return head + f"{f(dv)}   (linear)"


def record(net: LabNet, x, target, digits: int = 6) -> Record:
    """The graph of example x (one row) with target (outputs, or one class index)."""
    x = np.asarray(x, dtype=np.float64).reshape(1, -1)
    tgt = np.asarray(target).reshape(1, -1) if net.loss_name == "mse" else np.asarray(target).reshape(1)
    tr = net.trace(x, tgt)
    f = lambda v: fmt(v, digits)
    L = net.n_layers
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    steps: list[Step] = []
    param_keys: list[str] = []

    def add(node):
        nodes[node.key] = node
        return node

    for i in range(net.sizes[0]):
        add(Node(f"x{i}", "input", f"x{sub(i + 1)}", float(tr.x[0, i]), layer=-1, unit=i))

    # ---- forward: multiplies, sums, activations --------------------------------------------
    w_no = b_no = 0
    prev = [f"x{i}" for i in range(net.sizes[0])]
    for l in range(L):
        W, b = net.weight(l), net.bias(l)
        units, fan_in = W.shape
        kind = net.act_name(l)
        a_in = tr.x[0] if l == 0 else tr.a[l - 1][0]
        # w·a of every edge, by the engine's backend (elementwise multiply)
        prods = net.B.mul(W, a_in[None, :])
        layer_keys = []
        for j in range(units):
            mul_keys, terms_n, terms_v = [], [], []
            for i in range(fan_in):
                w_no += 1
                wk, mk = f"w{l},{j},{i}", f"m{l},{j},{i}"
                wl, al = f"w{sub(w_no)}", nodes[prev[i]].label
                add(Node(wk, "weight", wl, float(W[j, i]), layer=l, unit=j, src=i))
                m = add(Node(mk, "mul", f"{wl}{DOT}{al}", float(prods[j, i]), layer=l, unit=j, src=i))
                m.forward = f"{wl}{DOT}{al} = {product([W[j, i], a_in[i]], digits)} = {f(prods[j, i])}"
                edges.append(Edge(wk, mk, float(a_in[i]), d(m.label, wl)))
                edges.append(Edge(prev[i], mk, float(W[j, i]), d(m.label, al)))
                steps.append(Step(FORWARD, (mk,), m.label, m.forward))
                mul_keys.append(mk)
                terms_n.append(f"{wl}{DOT}{al}")
                terms_v.append(product([W[j, i], a_in[i]], digits))
            b_no += 1
            bk, zk = f"b{l},{j}", f"z{l},{j}"
            bl, zl = f"b{sub(b_no)}", pre(l, j, L)
            add(Node(bk, "bias", bl, float(b[j]), layer=l, unit=j))
            z = add(Node(zk, "sum", zl, float(tr.z[l][0, j]), layer=l, unit=j))
            z.forward = (f"{zl} = {' + '.join(terms_n)} + {bl} = {' + '.join(terms_v)} + "
                         f"{fmt_factor(b[j], digits)} = {f(tr.z[l][0, j])}")
            for mk in mul_keys:
                edges.append(Edge(mk, zk, 1.0, d(zl, nodes[mk].label)))
            edges.append(Edge(bk, zk, 1.0, d(zl, bl)))
            steps.append(Step(FORWARD, (zk,), zl, z.forward))
            if kind == "softmax":
                layer_keys.append(zk)
                continue
            ak, al_ = f"a{l},{j}", neuron(l, j, L)
            a = add(Node(ak, "act", al_, float(tr.a[l][0, j]), layer=l, unit=j))
            a.forward = _act_expr(kind, al_, zl, tr.z[l][0, j], tr.a[l][0, j], digits)
            da = tr.d_act[l]
            dv = float(da[0, j]) if da is not None else 1.0
            edges.append(Edge(zk, ak, dv, d(al_, zl)))
            steps.append(Step(FORWARD, (ak,), al_, a.forward))
            layer_keys.append(ak)
        param_keys += [f"w{l},{j},{i}" for j in range(units) for i in range(fan_in)]
        param_keys += [f"b{l},{j}" for j in range(units)]
        prev = layer_keys

    # ---- the loss ----------------------------------------------------------------------------
    k_out = net.sizes[-1]
    loss = add(Node("L", "loss", "L", tr.loss, layer=L))
    if net.loss_name == "mse":
        for k in range(k_out):
            add(Node(f"t{k}", "target", f"t{sub(k + 1)}", float(tr.target[0, k]), layer=L, unit=k))
        outs = [nodes[p].label for p in prev]
        tl = [f"t{sub(k + 1)}" for k in range(k_out)]
        scale = "" if k_out == 1 else ("\u00bd" if k_out == 2 else f"1/{k_out}")
        sym = " + ".join(f"({o} {MINUS} {t})\u00b2" for o, t in zip(outs, tl))
        num = " + ".join(f"({f(tr.a[L - 1][0, k])} {MINUS} {fmt_factor(tr.target[0, k], digits)})\u00b2"
                         for k in range(k_out))
        sq = " + ".join(f(tr.terms[0, k]) for k in range(k_out))
        if k_out == 1:
            loss.forward = f"L = {sym} = {num} = {f(tr.loss)}"
        else:
            loss.forward = (f"L = {scale}{DOT}[{sym}] = {scale}{DOT}[{num}] = {scale}{DOT}[{sq}] = "
                            f"{f(tr.loss)}")
    else:
        y = int(tr.target[0])
        add(Node("t0", "target", "y", float(y + 1), layer=L, unit=0))
        p = tr.terms[0]
        loss.forward = (f"p = softmax(z) = ({', '.join(f(v) for v in p)});  L = {MINUS}log p{sub(y + 1)} "
                        f"= {MINUS}log {f(p[y])} = {f(tr.loss)}   (y = class {y + 1})")
    for k, pk in enumerate(prev):
        edges.append(Edge(pk, "L", float(tr.g_out[0, k]), d("L", nodes[pk].label)))
    for k in range(k_out if net.loss_name == "mse" else 1):
        edges.append(Edge(f"t{k}", "L", None, ""))
    steps.append(Step(FORWARD, ("L",), "L", loss.forward))

    _backward(net, tr, nodes, steps, digits)
    return Record(net=net, trace=tr, nodes=nodes, edges=edges, steps=steps, param_keys=param_keys)


def _backward(net, tr, nodes, steps, digits):
    f = lambda v: fmt(v, digits)
    L = net.n_layers
    loss = nodes["L"]
    loss.grad = 1.0
    loss.backward = f"{d('L', 'L')} = 1"
    steps.append(Step(BACKWARD, ("L",), d("L", "L"), loss.backward))
    k_out = net.sizes[-1]
    for l in range(L - 1, -1, -1):
        W = net.weight(l)
        units, fan_in = W.shape
        kind = net.act_name(l)
        a_in = tr.x[0] if l == 0 else tr.a[l - 1][0]
        in_keys = [f"x{i}" for i in range(fan_in)] if l == 0 else \
            [f"a{l - 1},{i}" for i in range(fan_in)]
        for j in range(units):
            zk, ak = f"z{l},{j}", f"a{l},{j}"
            zn = nodes[zk]
            if kind == "softmax":
                gz = float(tr.g_z[l][0, j])
                y = int(tr.target[0])
                p = float(tr.terms[0, j])
                zn.grad = gz
                zn.backward = (f"{d('L', zn.label)} = p{sub(j + 1)} {MINUS} [y = {j + 1}] = {f(p)} {MINUS} "
                               f"{1 if j == y else 0} = {f(gz)}")
                steps.append(Step(BACKWARD, (zk,), d("L", zn.label), zn.backward))
                chain_names, chain_vals = [d("L", zn.label)], [gz]
            else:
                an = nodes[ak]
                an.grad = float(tr.g_a[l][0, j])
                if l == L - 1:
                    t = float(tr.target[0, j])
                    an.backward = (f"{d('L', an.label)} = (2/{k_out}){DOT}({an.label} {MINUS} t{sub(j + 1)}) = "
                                   f"(2/{k_out}){DOT}({f(an.value)} {MINUS} {fmt_factor(t, digits)}) = "
                                   f"{f(an.grad)}")
                else:
                    an.backward = _sum_over_paths(net, tr, nodes, l + 1, j, an.label, an.grad, digits)
                steps.append(Step(BACKWARD, (ak,), d("L", an.label), an.backward))
                dv = float(tr.d_act[l][0, j]) if tr.d_act[l] is not None else 1.0
                zn.grad = float(tr.g_z[l][0, j])
                zn.backward = (f"{d('L', zn.label)} = {d('L', an.label)}{DOT}{d(an.label, zn.label)} = "
                               f"{product([an.grad, dv], digits)} = {f(zn.grad)}\n"
                               + _act_derivative(kind, an.label, zn.label, an.value, dv, digits))
                steps.append(Step(BACKWARD, (zk,), d("L", zn.label), zn.backward))
                chain_names = [d("L", an.label), d(an.label, zn.label)]
                chain_vals = [an.grad, dv]
            for i in range(fan_in):
                wk, mk = f"w{l},{j},{i}", f"m{l},{j},{i}"
                wn, mn = nodes[wk], nodes[mk]
                mn.grad = zn.grad      # ∂z/∂(w·a) = 1
                wn.grad = float(tr.g_w[l][j, i])
                names = [*chain_names, d(zn.label, wn.label)]
                vals = [*chain_vals, float(a_in[i])]
                wn.backward = (f"{d('L', wn.label)} = {DOT.join(names)} = {product(vals, digits)} = "
                               f"{f(wn.grad)}   ({d(zn.label, wn.label)} = {nodes[in_keys[i]].label})")
                mn.backward = f"{d('L', mn.label)} = {d('L', zn.label)}{DOT}1 = {f(mn.grad)}"
                steps.append(Step(BACKWARD, (mk, wk), d("L", wn.label), wn.backward))
            bk = f"b{l},{j}"
            bn = nodes[bk]
            bn.grad = float(tr.g_b[l][j])
            bn.backward = (f"{d('L', bn.label)} = {DOT.join([*chain_names, d(zn.label, bn.label)])} = "
                           f"{product([*chain_vals, 1.0], digits)} = {f(bn.grad)}")
            steps.append(Step(BACKWARD, (bk,), d("L", bn.label), bn.backward))
    for i in range(net.sizes[0]):
        xn = nodes[f"x{i}"]
        xn.grad = float(tr.g_x[0, i])
        xn.backward = _sum_over_paths(net, tr, nodes, 0, i, xn.label, xn.grad, digits)
        steps.append(Step(BACKWARD, (xn.key,), d("L", xn.label), xn.backward))


def _sum_over_paths(net, tr, nodes, l, i, label, total, digits):
    """∂L/∂a = Σ_j ∂L/∂z_j · w_ji over the units j of layer l that a feeds; total from the engine."""
    W = net.weight(l)
    gz = tr.g_z[l][0]
    zl = [nodes[f"z{l},{j}"].label for j in range(W.shape[0])]
    wl = [nodes[f"w{l},{j},{i}"].label for j in range(W.shape[0])]
    terms = net.B.mul(gz, W[:, i])     # one product per path
    sym = " + ".join(f"{d('L', z)}{DOT}{w}" for z, w in zip(zl, wl))
    vals = " + ".join(product([gz[j], W[j, i]], digits) for j in range(W.shape[0]))
    head = f"{d('L', label)} = "
    if W.shape[0] == 1:
        return head + f"{sym} = {vals} = {fmt(total, digits)}"
    parts = " + ".join(fmt_factor(t, digits) for t in terms)
    return (head + f"\u03a3 over {W.shape[0]} paths = {sym}\n    = {vals} = {parts} = "
            f"{fmt(total, digits)}")

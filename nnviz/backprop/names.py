"""Names and numbers as the lab writes them: w₁, z_h₁, ∂L/∂w₅, 0.15·0.05, −0.038."""
from __future__ import annotations

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
MINUS = "\u2212"
DOT = "\u00b7"
LAYER_LETTERS = ("h", "g", "k")       # hidden layers 1, 2, 3; the output layer is o


def sub(i: int) -> str:
    return str(i).translate(_SUB)


def fmt(v: float, digits: int = 6) -> str:
    """v with `digits` significant digits, trailing zeros dropped, a real minus sign."""
    v = float(v)
    if v == 0:
        return "0"
    s = f"{v:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{int(exp)}"
    return s.replace("-", MINUS)


def fmt_factor(v: float, digits: int = 6) -> str:
    """A factor in a product: negative numbers in parentheses."""
    s = fmt(v, digits)
    return f"({s})" if s.startswith(MINUS) else s


def product(values, digits: int = 6) -> str:
    return DOT.join(fmt_factor(v, digits) for v in values)


def neuron(l: int, j: int, n_layers: int) -> str:
    """Activation name of unit j (0-based) in Dense layer l: h₁, g₂, o₁."""
    letter = "o" if l == n_layers - 1 else LAYER_LETTERS[l]
    return f"{letter}{sub(j + 1)}"


def pre(l: int, j: int, n_layers: int) -> str:
    return f"z_{neuron(l, j, n_layers)}"


def d(num: str, den: str) -> str:
    return f"\u2202{num}/\u2202{den}"

"""The backprop lab's numbers (Qt-free): a small net of engine layers, its graph and text."""
from .batch import MAX_EXAMPLES, BatchTable, Update, batch_table, gradient_check, sgd_update, update_lines
from .net import ACTIVATIONS, LOSSES, LabError, LabNet, Trace
from .recorder import BACKWARD, FORWARD, UPDATE, Edge, Node, Record, Step, record
from .vanishing import CHAIN_ACTIVATIONS, chain_gradients, depth_sweep, layer_profile

__all__ = ["ACTIVATIONS", "LOSSES", "LabError", "LabNet", "Trace", "record", "Record", "Node", "Edge",
           "Step", "FORWARD", "BACKWARD", "UPDATE", "MAX_EXAMPLES", "BatchTable", "Update",
           "batch_table", "sgd_update", "gradient_check", "update_lines", "CHAIN_ACTIVATIONS",
           "chain_gradients", "depth_sweep", "layer_profile", "tutorial_net"]


def tutorial_net():
    """The 2-2-2 sigmoid network of the classic backprop worked example, with its example.

    Returns (net, x, target). Its shared biases b1 = 0.35 (hidden) and b2 = 0.60 (output)
    are one bias per unit here: b₁ = b₂ = 0.35, b₃ = b₄ = 0.60.
    """
    net = LabNet((2, 2, 2), "sigmoid", "sigmoid", "mse")
    net.set_params([[[0.15, 0.20], [0.25, 0.30]], [[0.40, 0.45], [0.50, 0.55]]],
                   [[0.35, 0.35], [0.60, 0.60]])
    return net, [0.05, 0.10], [0.01, 0.99]

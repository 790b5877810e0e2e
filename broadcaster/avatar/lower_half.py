"""Wav2Lip's graph trimmed to the rows the anchor uses: the lower half of the predicted face.

Only the mouth (the lower half of the 96x96 prediction) is ever pasted, yet the decoder's
widest layers (24x24 to 96x96, about two thirds of the model's time on a CPU) compute the
whole face. Each tensor of the decoder is computed from the first row some output row needs
onwards: a 3x3 convolution (stride 1, padding 1) on rows [r, H) with its top padding removed
gives the original rows [r + 1, H) exactly; a transposed 3x3 convolution (stride 2, padding
1, output padding 1) on input rows [r, H) gives the original rows [2r, 2H) exactly; element-
wise nodes and channel concatenations keep their rows, and a Slice takes off the rows a
consumer does not need. The same arithmetic on fewer rows: the lower half equals the whole
model's up to float rounding. The output keeps its shape; its upper half is zeros.

A graph with anything else on the way (another kernel, stride or padding) keeps those nodes
whole, up to the whole model (nothing to trim).
"""

from __future__ import annotations

import numpy as np

_ELEMENTWISE = {"Relu", "Sigmoid", "BatchNormalization", "Add", "Identity", "LeakyRelu", "Clip"}


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _kind(node, heights: dict[str, int]) -> str | None:
    """'conv3' (3x3, stride 1, padding 1), 'conv1' (1x1, no padding), 'up2' (transposed 3x3,
    stride 2, padding 1, output padding 1), 'same' (rows kept: elementwise on, or a channel
    concatenation of, tensors as high as its output) or None (computed whole)."""
    a = _attrs(node)
    plain = a.get("group", 1) == 1 and list(a.get("dilations", [1, 1])) == [1, 1] \
        and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    if node.op_type == "Conv" and plain and list(a.get("strides", [1, 1])) == [1, 1]:
        k, pads = list(a.get("kernel_shape", [])), list(a.get("pads", [0, 0, 0, 0]))
        if k == [3, 3] and pads == [1, 1, 1, 1]:
            return "conv3"
        if k == [1, 1] and pads == [0, 0, 0, 0]:
            return "conv1"
    if node.op_type == "ConvTranspose" and plain and list(a.get("kernel_shape", [])) == [3, 3] \
            and list(a.get("strides", [])) == [2, 2] and list(a.get("pads", [])) == [1, 1, 1, 1] \
            and list(a.get("output_padding", [0, 0])) == [1, 1] and "output_shape" not in a:
        return "up2"
    if node.op_type in _ELEMENTWISE or (node.op_type == "Concat" and a.get("axis") == 1):
        rows = {heights.get(x) for x in (*node.input, *node.output) if x in heights}
        return "same" if len(rows) == 1 else None
    return None


def trim_to_lower_half(model_bytes: bytes, size: int = 96) -> tuple[bytes, float]:
    """The model computing only what the lower half of its (B, 3, size, size) output needs,
    and the share of the decoder's rows it still computes (1.0: nothing was trimmed, the
    bytes as given)."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference
    model = shape_inference.infer_shapes(onnx.load_from_string(model_bytes))
    graph = model.graph
    consts = {i.name for i in graph.initializer}
    for node in graph.node:            # weights behind Identity or Constant nodes
        if all(x in consts for x in node.input if x):
            consts.update(node.output)
    heights = {}
    for info in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = info.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[2].HasField("dim_value") and info.name not in consts:
            heights[info.name] = dims[2].dim_value
    nodes = list(graph.node)
    out_name = graph.output[0].name
    if heights.get(out_name) != size:
        return model_bytes, 1.0
    # backward: the first row each tensor must have (0: all of it)
    need: dict[str, int] = {out_name: size // 2}
    for node in reversed(nodes):
        want = min((need[o] for o in node.output if o in need), default=0)
        kind = _kind(node, heights) if want else None
        for x in node.input:
            if not x or x in consts or x not in heights:
                continue
            if kind == "conv3":
                first = max(0, want - 1)
            elif kind == "up2":
                first = want // 2
            elif kind in ("conv1", "same"):
                first = want
            else:
                first = 0
            need[x] = min(need.get(x, first), first)
    # forward: compute each tensor from its needed row on, slicing what comes with more
    have: dict[str, int] = {}
    out_nodes, extra_inits, kept_rows, all_rows = [], [], 0, 0

    def const(name: str, values: list[int]) -> str:
        extra_inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def rows_from(x: str, first: int) -> str:
        """`x` from original row `first` on (a Slice when it holds more)."""
        start = have.get(x, 0)
        if first <= start:
            return x
        name = f"{x}/rows{first}"
        out_nodes.append(helper.make_node(
            "Slice", [x, const(f"{name}/starts", [first - start]), const(f"{name}/ends", [2**62]),
                      const(f"{name}/axes", [2])], [name], name=name))
        have[name] = first
        return name

    for node in nodes:
        want = min((need.get(o, 0) for o in node.output), default=0)
        kind = _kind(node, heights) if want else None
        if kind is None:
            ins = [rows_from(x, 0) if x in have else x for x in node.input]
            node_out = helper.make_node(node.op_type, ins, list(node.output), name=node.name)
            node_out.attribute.extend(node.attribute)
            out_nodes.append(node_out)
            continue
        first_in = {"conv3": max(0, want - 1), "up2": want // 2}.get(kind, want)
        ins = [rows_from(x, first_in) if x in heights and x not in consts else x for x in node.input]
        new = helper.make_node(node.op_type, ins, list(node.output), name=node.name)
        for attr in node.attribute:
            if kind == "conv3" and attr.name == "pads" and first_in > 0:
                new.attribute.append(helper.make_attribute("pads", [0, 1, 1, 1]))
            else:
                new.attribute.append(attr)
        out_nodes.append(new)
        starts = {"conv3": first_in + 1 if first_in > 0 else 0, "up2": 2 * first_in}.get(kind, first_in)
        for o in node.output:
            have[o] = starts
            if o in heights:
                kept_rows += heights[o] - starts
                all_rows += heights[o]
    if not all_rows or kept_rows == all_rows:
        return model_bytes, 1.0
    # the output back to its shape: the computed rows under zeros
    trimmed = f"{out_name}/lower"
    for n in out_nodes:
        n.output[:] = [trimmed if o == out_name else o for o in n.output]
        n.input[:] = [trimmed if i == out_name else i for i in n.input]
    have[trimmed] = have.pop(out_name, 0)
    lower = rows_from(trimmed, size // 2)
    out_nodes.append(helper.make_node(
        "Pad", [lower, const(f"{out_name}/pads", [0, 0, size // 2, 0, 0, 0, 0, 0])], [out_name],
        name=f"{out_name}/upper_zeros", mode="constant"))
    del graph.node[:]
    graph.node.extend(out_nodes)
    graph.initializer.extend(extra_inits)
    del graph.value_info[:]
    return model.SerializeToString(), kept_rows / all_rows

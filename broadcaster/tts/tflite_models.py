"""TFLite models on the LiteRT runtime (ai-edge-litert), without TensorFlow.

Models converted with TensorFlow "select ops" carry Flex custom ops that only a TensorFlow
build can run. The one such op the packaged Chinese voice uses, FlexRandomUniform (the
dropout that FastSpeech2 keeps on at inference), has a builtin twin in LiteRT
(RANDOM_UNIFORM: same input, a shape, and the same float32 output), so the model is
rewritten in memory to use it. Any other Flex op is refused by name.
"""
from __future__ import annotations

from pathlib import Path

_FLEX_TO_BUILTIN = {"FlexRandomUniform": "RANDOM_UNIFORM"}


class TFLiteModelError(ValueError):
    """The file is not a TFLite model, or uses an op this runtime cannot run."""


def _flex_name(code) -> str | None:
    custom = code.customCode
    if isinstance(custom, bytes):
        custom = custom.decode("utf-8", "replace")
    return custom if custom and custom.startswith("Flex") else None


def without_flex_ops(model: bytes, source: str) -> bytes:
    """The model with its Flex ops replaced by their builtin twins (unchanged if it has none).
    source names the file in errors."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    if len(model) < 8 or model[4:8] != b"TFL3":
        raise TFLiteModelError(f"{source} is not a TFLite model")
    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    flex = {i: _flex_name(c) for i, c in enumerate(tree.operatorCodes) if _flex_name(c)}
    if not flex:
        return model
    unknown = sorted(set(flex.values()) - set(_FLEX_TO_BUILTIN))
    if unknown:
        raise TFLiteModelError(f"{source} needs TensorFlow ops LiteRT lacks: {', '.join(unknown)}")
    new_index = {}
    for name in sorted(set(flex.values())):
        code = schema.OperatorCodeT()
        code.builtinCode = getattr(schema.BuiltinOperator, _FLEX_TO_BUILTIN[name])
        code.deprecatedBuiltinCode = schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
        code.version = 1
        tree.operatorCodes.append(code)
        new_index[name] = len(tree.operatorCodes) - 1
    for graph in tree.subgraphs:
        for op in graph.operators:
            if op.opcodeIndex in flex:
                op.opcodeIndex = new_index[flex[op.opcodeIndex]]
                op.customOptions = None
                op.builtinOptionsType = schema.BuiltinOptions.RandomOptions
                op.builtinOptions = schema.RandomOptionsT()
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def load_interpreter(path: Path, threads: int = 1):
    """A LiteRT interpreter for the model at path, Flex ops rewritten."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        model = path.read_bytes()
    except OSError as exc:
        raise TFLiteModelError(f"{path}: {exc.strerror or exc}") from None
    return Interpreter(model_content=without_flex_ops(model, str(path)), num_threads=threads)

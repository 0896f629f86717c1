"""TF Serving's REST JSON predict API, mapped onto a signature's tensors the way the server does.

TF Serving (``POST /v1/models/<name>[/versions/<v>]:predict``) accepts two request formats:

  row ("instances"):   {"signature_name": "pair", "instances": [{"text_a": "..", "text_b": ".."},
                        ...]}; each instance is one example. A signature with a single input
                        also takes bare values: {"instances": ["first text", "second text"]}.
  columnar ("inputs"): {"signature_name": "pair", "inputs": {"text_a": [..], "text_b": [..]}};
                        with a single input, "inputs" may be the list itself.

Strings are JSON strings (UTF-8); binary values are {"b64": "<base64>"}. The reply mirrors the
request: {"predictions": [one object per example]} for rows (a bare value per example when the
signature has one output), {"outputs": {name: batch}} for columns. This module has no TensorFlow
dependency: it turns a request into numpy arrays keyed by input name and outputs into the reply,
which is what tests use to check that documented requests fit the exported signatures.
"""

from __future__ import annotations

import base64
from typing import Mapping, Sequence

import numpy as np

DEFAULT_SIGNATURE = "serving_default"


class RequestError(ValueError):
    """A request TF Serving would reject (its message says why, like the server's)."""


def _decode_value(value):
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise RequestError(f'JSON object {value!r} is not a value; binary values are {{"b64": "..."}}')
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_value(item) for item in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _to_array(values) -> np.ndarray:
    decoded = _decode_value(values)
    array = np.array(decoded, dtype=object)
    if array.size and all(isinstance(item, bytes) for item in array.flat):
        return array
    return np.array(decoded)


def request_to_inputs(request: Mapping, input_names: Sequence[str]) -> tuple[str, dict]:
    """(signature name, {input name: numpy array with the batch first}) for a predict request.

    input_names: the signature's input names. Raises RequestError as the server would reject
    the request (both or neither format, missing or unknown inputs, ragged batches).
    """
    signature = request.get("signature_name", DEFAULT_SIGNATURE)
    names = list(input_names)
    if ("instances" in request) == ("inputs" in request):
        raise RequestError("the request needs exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    if "instances" in request:
        instances = request["instances"]
        if not isinstance(instances, list):
            raise RequestError("'instances' must be a list")
        columns = {name: [] for name in names}
        for index, instance in enumerate(instances):
            if isinstance(instance, dict) and "b64" not in instance:
                if set(instance) != set(names):
                    raise RequestError(
                        f"instance {index} has inputs {sorted(instance)}; the "
                        f"signature {signature!r} takes {sorted(names)}"
                    )
                for name in names:
                    columns[name].append(instance[name])
            elif len(names) == 1:
                columns[names[0]].append(instance)
            else:
                raise RequestError(
                    f"instance {index} is a bare value but signature "
                    f"{signature!r} has inputs {sorted(names)}; send objects"
                )
        inputs = {name: _to_array(values) for name, values in columns.items()}
    else:
        columns = request["inputs"]
        if not isinstance(columns, dict) or (len(names) == 1 and names[0] not in columns):
            if len(names) != 1:
                raise RequestError(f"'inputs' must be an object with {sorted(names)}")
            columns = {names[0]: columns}
        if set(columns) != set(names):
            raise RequestError(f"'inputs' has {sorted(columns)}; the signature {signature!r} takes {sorted(names)}")
        inputs = {name: _to_array(columns[name]) for name in names}
    sizes = {name: (array.shape[0] if array.ndim else None) for name, array in inputs.items()}
    if len(set(sizes.values())) > 1:
        raise RequestError(f"inputs have different batch sizes {sizes}")
    return signature, inputs


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def outputs_to_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> dict:
    """The JSON reply for a signature's outputs ({name: array with the batch first})."""
    names = sorted(outputs)
    arrays = {name: np.asarray(outputs[name]) for name in names}
    if not row_format:
        if len(names) == 1:
            return {"outputs": _jsonable(arrays[names[0]])}
        return {"outputs": {name: _jsonable(array) for name, array in arrays.items()}}
    batch = {array.shape[0] for array in arrays.values()}
    if len(batch) != 1:
        raise RequestError(
            "outputs of different batch sizes cannot be written as rows; use the columnar 'inputs' format"
        )
    rows = []
    for index in range(batch.pop()):
        if len(names) == 1:
            rows.append(_jsonable(arrays[names[0]][index]))
        else:
            rows.append({name: _jsonable(array[index]) for name, array in arrays.items()})
    return {"predictions": rows}

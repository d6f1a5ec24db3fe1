"""What the Open Inference Protocol says about this server and its models, for REST and gRPC.

Server metadata and model metadata are built here once, so ``GET /v2/...``
and the gRPC ``ServerMetadata`` / ``ModelMetadata`` calls cannot disagree.
"""

from __future__ import annotations

from typing import Any

from pilothouse.serving import decoding
from pilothouse.serving.deployments import Deployment
from pilothouse.serving.served import ServedModel

_PLATFORMS = {
    "sklearn": "sklearn",
    "onnx": "onnxruntime_onnx",
    "python": "python",
    "mlflow": "mlflow",
}
_FEATURE_TYPES = {"float": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES"}
SERVER_NAME = "pilothouse"
SERVER_VERSION = "0.1.0"
EXTENSIONS = ("binary_tensor_data",)
REQUEST_ID = "Pilothouse-Request-Id"
"""Response header naming the request, for joining actuals (V2 also answers it as ``id``)."""


def metadata(deployment: Deployment, model: ServedModel) -> dict[str, Any]:
    """The V2 model metadata of one version of a deployment."""
    manifest = model.model.manifest
    inputs = [
        {"name": f.name, "datatype": _FEATURE_TYPES[f.type.value], "shape": [-1]}
        for f in manifest.features
    ]
    if manifest.is_classifier:
        kinds = {type(c) for c in manifest.target.classes or ()}
        label_type = "BYTES" if kinds <= {str} else "INT64"
    else:
        label_type = "FP64"
    outputs: list[dict[str, Any]] = [
        {"name": decoding.PREDICT, "datatype": label_type, "shape": [-1]}
    ]
    if model.model.supports_proba:
        outputs.append(
            {
                "name": decoding.PREDICT_PROBA,
                "datatype": "FP64",
                "shape": [-1, len(model.model.classes)],
            }
        )
    return {
        "name": deployment.id,
        "versions": [m.package_id for m in (deployment.champion, *deployment.challengers)],
        "platform": _PLATFORMS[manifest.format.value],
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {
            "model_package_id": model.package_id,
            "model_name": manifest.name,
            "model_version": manifest.version,
            "target": manifest.target.model_dump(mode="json", exclude_none=True),
            "features": list(manifest.feature_names),
        },
    }

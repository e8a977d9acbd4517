"""A selector as bytes that cannot run code when read: a numpy ``.npz`` archive.

Loading a pickle (joblib) runs whatever the bytes say, so a row written to a shared
results database could run commands on every machine that asks for a recommendation.
This format holds only numbers, strings and numpy's plain structured arrays; it is read
with ``numpy.load(allow_pickle=False)``, which refuses object arrays, and every tree is
checked (:meth:`selection._forest.Trees.check`) before scikit-learn's compiled tree
walker sees it. Layout: ``meta`` (a JSON document as a byte string: format, encoder,
targets' scalars, input lengths, trained keys, importances, frame column types), the
frames' columns as ``<frame>/<column>``, and each ensemble member's arrays as
``<target>/<member>/...`` (tree nodes concatenated, with their lengths).
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pandas as pd

from selection._forest import SelectorFormatError, Trees
from selection.features import FeatureEncoder
from selection.model import SelectorModel, TargetModel

FORMAT = "evalflow-selector-npz-1"
"""The value of ``selector_blobs.format`` for blobs in this format."""
_FRAMES = ("configs", "evidence", "case_scores", "prompt_lengths")
"""The frames stored; ``prompt_lengths`` is absent from selectors stored before it was
kept (read as empty: nothing said about prompts fitting)."""


def encode(model: SelectorModel) -> bytes:
    """The selector as the bytes of an ``.npz`` archive."""
    arrays: dict[str, np.ndarray] = {}
    frames = {name: _put_frame(arrays, name, getattr(model, name)) for name in _FRAMES}
    targets = {}
    for name, target in model.targets.items():
        targets[name] = {"scale": target.scale, "floor": target.floor, "z": target.z}
        targets[name]["members"] = len(target.members)
        for i, member in enumerate(target.members):
            prefix = f"{name}/{i}"
            arrays[f"{prefix}/nodes"] = np.concatenate(member.nodes)
            arrays[f"{prefix}/node_counts"] = np.array([len(n) for n in member.nodes], np.int64)
            arrays[f"{prefix}/bitsets"] = np.concatenate(member.bitsets)
            arrays[f"{prefix}/bitset_counts"] = np.array([len(b) for b in member.bitsets], np.int64)
            arrays[f"{prefix}/known"] = member.known_cat_bitsets
            arrays[f"{prefix}/f_idx_map"] = member.f_idx_map
            targets[name].setdefault("baselines", []).append(member.baseline)
    meta = {
        "format": FORMAT,
        "encoder": {"levels": model.encoder.levels, "numeric": model.encoder.numeric},
        "targets": targets,
        "frames": frames,
        "typical_input_chars": model.typical_input_chars,
        "trained_keys": sorted(model.trained_keys),
        "coverage": model.coverage,
        "importances": model.importances,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def decode(data: bytes) -> SelectorModel:
    """A selector from :func:`encode`'s bytes. Anything else (a pickle, a damaged or
    tampered archive) raises SelectorFormatError with one line saying what is wrong."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(arrays["meta"].tobytes().decode())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise SelectorFormatError(f"the stored selector is not in the {FORMAT} format")
        encoder = FeatureEncoder(
            levels={str(k): [str(v) for v in vs] for k, vs in meta["encoder"]["levels"].items()},
            numeric=[str(v) for v in meta["encoder"]["numeric"]],
        )
        targets = {
            str(name): _get_target(arrays, str(name), spec, len(encoder.columns))
            for name, spec in meta["targets"].items()
        }
        frames = {
            name: _get_frame(arrays, name, meta["frames"][name])
            for name in _FRAMES
            if name in meta["frames"]
        }
        return SelectorModel(
            encoder=encoder,
            targets=targets,
            configs=frames["configs"].set_index("config_hash", drop=False),
            evidence=frames["evidence"],
            case_scores=frames["case_scores"],
            typical_input_chars={str(k): float(v) for k, v in meta["typical_input_chars"].items()},
            trained_keys=frozenset(str(k) for k in meta["trained_keys"]),
            coverage=float(meta["coverage"]),
            importances=meta["importances"],
            **({"prompt_lengths": frames["prompt_lengths"]} if "prompt_lengths" in frames else {}),
        )
    except SelectorFormatError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise SelectorFormatError(f"the stored selector is not a readable archive ({exc})") from exc
    except (KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        what = type(exc).__name__
        raise SelectorFormatError(f"the stored selector is damaged ({what}: {exc})") from exc


def _get_target(arrays: dict[str, np.ndarray], name: str, spec: Any, n_features: int):
    members = []
    for i in range(int(spec["members"])):
        prefix = f"{name}/{i}"
        nodes = _split(arrays[f"{prefix}/nodes"], arrays[f"{prefix}/node_counts"])
        bitsets = _split(arrays[f"{prefix}/bitsets"], arrays[f"{prefix}/bitset_counts"])
        member = Trees(
            baseline=float(spec["baselines"][i]),
            nodes=nodes,
            bitsets=[np.ascontiguousarray(b) for b in bitsets],
            known_cat_bitsets=np.ascontiguousarray(arrays[f"{prefix}/known"]),
            f_idx_map=np.ascontiguousarray(arrays[f"{prefix}/f_idx_map"]),
        )
        member.check(n_features)
        members.append(member)
    return TargetModel(name, members, float(spec["scale"]), float(spec["floor"]), float(spec["z"]))


def _split(values: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    counts = np.asarray(counts)
    if counts.dtype.kind not in "iu" or (counts < 0).any() or counts.sum() != len(values):
        raise SelectorFormatError("stored array lengths do not add up")
    return np.split(values, np.cumsum(counts)[:-1])


def _put_frame(arrays: dict[str, np.ndarray], name: str, frame: pd.DataFrame) -> list[list[str]]:
    """Store each column as a plain array; return [column, kind] pairs (kind: "f" float,
    "i" integer, "b" bool, "s" string with "" for missing)."""
    columns = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            kind, array = "b", values.to_numpy(dtype=bool)
        elif pd.api.types.is_integer_dtype(values):
            kind, array = "i", values.to_numpy(dtype=np.int64)
        elif pd.api.types.is_numeric_dtype(values):
            kind, array = "f", values.to_numpy(dtype=float)
        else:
            kind, array = "s", values.astype("string").fillna("").to_numpy(dtype=str)
        arrays[f"{name}/{column}"] = array
        columns.append([str(column), kind])
    return columns


def _get_frame(arrays: dict[str, np.ndarray], name: str, columns: Any) -> pd.DataFrame:
    data = {}
    for column, kind in columns:
        array = arrays[f"{name}/{column}"]
        expected = {"b": "b", "i": "i", "f": "f", "s": "U"}[kind]
        if array.dtype.kind != expected or array.ndim != 1:
            raise SelectorFormatError(f"stored column {name}.{column} has the wrong type")
        data[str(column)] = array.astype(object) if kind == "s" else array
    return pd.DataFrame(data)

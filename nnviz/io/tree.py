"""Nested Python state <-> an HDF5 group, generically.

* dict                  -> group (keys must be strings)
* numpy array           -> dataset (numeric or bool), with a CRC32 attribute
* list/tuple with arrays -> group with attr ``__kind__`` = "list"/"tuple", items "0", "1", ...
* bool / int (int64) / float / str -> attribute of the same type
* anything else JSON-able (None, big ints, lists of scalars, NaN) -> a JSON string attribute,
  its key listed in the group's ``__json__`` attribute

Keys are escaped so that "/" and "." can appear in them ("%2F", "%2E" at the start).
"""
import json
import zlib

import numpy as np

KIND_ATTR = "__kind__"
JSON_ATTR = "__json__"
CRC_ATTR = "nnviz_crc32"
_RESERVED = (KIND_ATTR, JSON_ATTR)
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
MAX_ATTR_BYTES = 60_000  # HDF5 keeps attributes in the object header: 64 KiB at most


class TreeError(ValueError):
    pass


def escape(key):
    if not isinstance(key, str):
        raise TreeError(f"state keys must be strings, got {key!r}")
    if key in _RESERVED:
        raise TreeError(f"state key {key!r} is reserved")
    k = key.replace("%", "%25").replace("/", "%2F")
    if k.startswith("."):
        k = "%2E" + k[1:]
    return k or "%"


def unescape(name):
    if name == "%":
        return ""
    if name.startswith("%2E"):
        name = "." + name[3:]
    return name.replace("%2F", "/").replace("%25", "%")


def crc32(arr):
    a = np.ascontiguousarray(arr)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return zlib.crc32(a.tobytes()) & 0xFFFFFFFF


def write_array(group, name, arr):
    arr = np.ascontiguousarray(arr)
    if arr.dtype.kind not in "biuf":
        raise TreeError(f"{group.name}/{name}: cannot store an array of dtype {arr.dtype}")
    ds = group.create_dataset(name, data=arr)
    ds.attrs[CRC_ATTR] = np.uint32(crc32(arr))
    return ds


def read_array(ds, budget, shape=None, what=None, require_crc=False):
    """Read a dataset after checking its kind, shape, size (against `budget` bytes) and CRC.

    `require_crc`: the array was written by nnviz, so a missing checksum means it was replaced.
    """
    import h5py
    what = what or ds.name
    if not isinstance(ds, h5py.Dataset):
        raise TreeError(f"{what} is not a dataset")
    if ds.dtype.kind not in "biuf":
        raise TreeError(f"{what} has dtype {ds.dtype}, expected numbers")
    if shape is not None and tuple(ds.shape) != tuple(shape):
        raise TreeError(f"{what} has shape {tuple(ds.shape)}, expected {tuple(shape)}")
    nbytes = int(np.prod(ds.shape, dtype=np.float64)) * ds.dtype.itemsize if ds.shape else ds.dtype.itemsize
    if nbytes > budget:
        raise TreeError(f"{what} claims {nbytes:,} bytes, more than the file can hold")
    arr = np.asarray(ds[()])
    if arr.dtype.kind not in "biuf":
        raise TreeError(f"{what} has dtype {arr.dtype}, expected numbers")
    want = ds.attrs.get(CRC_ATTR)
    if want is None and require_crc:
        raise TreeError(f"{what} has no {CRC_ATTR} checksum: nnviz writes one on every array, "
                        f"so the array was replaced after saving")
    if want is not None:
        try:
            want = int(np.asarray(want).reshape(()))
        except (TypeError, ValueError):
            raise TreeError(f"{what}: unreadable checksum attribute") from None
        if crc32(arr) != want:
            raise TreeError(f"{what}: checksum mismatch (the file is damaged, or the data was "
                            f"changed after saving)")
    return arr


def set_text_attr(obj, name, text):
    """A string attribute; too long for an attribute -> a scalar string dataset."""
    if len(text.encode("utf-8")) > MAX_ATTR_BYTES:
        obj.create_dataset(name, data=text, dtype=_str_dtype())
    else:
        obj.attrs[name] = text


def get_text_attr(obj, name, required=True):
    import h5py
    if name in obj.attrs:
        v = obj.attrs[name]
    elif isinstance(obj, h5py.Group) and name in obj and isinstance(obj[name], h5py.Dataset):
        ds = obj[name]
        if ds.shape != () or ds.dtype.kind not in "OSU":
            raise TreeError(f"{obj.name}/{name} is not a text dataset")
        v = ds[()]
    elif required:
        raise TreeError(f"{obj.name} has no attribute {name!r}")
    else:
        return None
    return as_text(v, f"{obj.name} attribute {name!r}")


def as_text(v, what):
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if isinstance(v, (bytes, np.bytes_)):
        try:
            v = bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            raise TreeError(f"{what} is not valid UTF-8") from None
    if not isinstance(v, str):
        raise TreeError(f"{what} should be text, found {type(v).__name__}")
    return v


def _str_dtype():
    import h5py
    return h5py.string_dtype("utf-8")


def _is_array(v):
    return isinstance(v, np.ndarray)


def _contains_array(v):
    if _is_array(v):
        return True
    if isinstance(v, dict):
        return any(_contains_array(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(_contains_array(x) for x in v)
    return False


def write_tree(group, obj):
    if not isinstance(obj, dict):
        raise TreeError(f"{group.name}: expected a dict, got {type(obj).__name__}")
    json_keys = []
    for key, v in obj.items():
        name = escape(key)
        if isinstance(v, dict):
            write_tree(group.create_group(name), v)
        elif _is_array(v):
            write_array(group, name, v)
        elif isinstance(v, (list, tuple)) and _contains_array(v):
            sub = group.create_group(name)
            sub.attrs[KIND_ATTR] = "tuple" if isinstance(v, tuple) else "list"
            write_tree(sub, {str(i): x for i, x in enumerate(v)})
        elif isinstance(v, (bool, np.bool_)):
            group.attrs[name] = np.bool_(v)
        elif isinstance(v, (int, np.integer)) and _INT64[0] <= int(v) <= _INT64[1]:
            group.attrs[name] = np.int64(v)
        elif isinstance(v, (float, np.floating)):
            group.attrs[name] = np.float64(v)
        elif isinstance(v, str):
            set_text_attr(group, name, v)
        else:
            try:
                text = json.dumps(_plain(v))
            except (TypeError, ValueError) as e:
                raise TreeError(f"{group.name}/{name}: cannot store {type(v).__name__}: {e}") from None
            set_text_attr(group, name, text)
            json_keys.append(name)
    if json_keys:
        group.attrs[JSON_ATTR] = json.dumps(json_keys)


def _plain(v):
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def read_tree(group, budget, require_crc=False):
    """Inverse of write_tree; raises TreeError (a ValueError) on anything unexpected."""
    import h5py
    if not isinstance(group, h5py.Group):
        raise TreeError(f"{group.name} is not a group")
    json_keys = set()
    if JSON_ATTR in group.attrs:
        try:
            keys = json.loads(as_text(group.attrs[JSON_ATTR], f"{group.name} {JSON_ATTR}"))
        except json.JSONDecodeError as e:
            raise TreeError(f"{group.name}: malformed {JSON_ATTR}: {e}") from None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise TreeError(f"{group.name}: malformed {JSON_ATTR}")
        json_keys = set(keys)
    out = {}
    for name in group.attrs:
        if name in (KIND_ATTR, JSON_ATTR):
            continue
        out[unescape(name)] = _read_attr(group, name, name in json_keys)
    for name in group:
        item = group.get(name)
        if item is None:
            raise TreeError(f"{group.name}/{name} cannot be opened")
        if isinstance(item, h5py.Dataset):
            if name in json_keys or item.dtype.kind in "OSU":
                out[unescape(name)] = _decode(get_text_attr(group, name), name in json_keys,
                                              f"{group.name}/{name}")
            else:
                out[unescape(name)] = read_array(item, budget, require_crc=require_crc)
        elif isinstance(item, h5py.Group):
            kind = item.attrs.get(KIND_ATTR)
            if kind is None:
                out[unescape(name)] = read_tree(item, budget, require_crc)
            else:
                kind = as_text(kind, f"{item.name} {KIND_ATTR}")
                if kind not in ("list", "tuple"):
                    raise TreeError(f"{item.name}: unknown {KIND_ATTR} {kind!r}")
                d = read_tree(item, budget, require_crc)
                try:
                    items = [d[str(i)] for i in range(len(d))]
                except KeyError:
                    raise TreeError(f"{item.name}: list items are not numbered 0..{len(d) - 1}") from None
                out[unescape(name)] = tuple(items) if kind == "tuple" else items
        else:
            raise TreeError(f"{group.name}/{name} is neither a group nor a dataset")
    return out


def _decode(text, is_json, what):
    if not is_json:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TreeError(f"{what}: malformed JSON: {e}") from None


def _read_attr(group, name, is_json):
    what = f"{group.name} attribute {name!r}"
    v = group.attrs[name]
    if is_json or isinstance(v, (str, bytes, np.bytes_)):
        return _decode(as_text(v, what), is_json, what)
    if isinstance(v, np.ndarray):
        if v.shape != ():
            raise TreeError(f"{what} should be a single value, found shape {v.shape}")
        v = v[()]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    raise TreeError(f"{what} has an unsupported type {type(v).__name__}")

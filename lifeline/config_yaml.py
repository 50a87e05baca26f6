"""Reading ``config.yaml`` safely: a hostile or broken file is one ``ConfigError``, fast.

:func:`read_yaml` decodes the file into plain data (mappings, lists, scalars) before
:func:`lifeline.config.parse_config` sees it, and refuses, naming the file:

* a file that cannot be read (missing, a directory, no permission);
* a file larger than :data:`MAX_FILE_BYTES` (only that much plus one byte is ever read);
* bytes that are not UTF-8 (the offset of the first bad byte is named);
* text that is not YAML (the line and column are named);
* a **duplicate key** at any level (YAML would silently keep the last one), named by its
  key path (``upbit.rest.read_timeout``) with the lines of both;
* aliases that expand to more than :data:`MAX_ALIAS_NODES` nodes in total, or that refer to
  the node they are inside: the "billion laughs" document, a few hundred bytes that expand
  to 10⁹ strings, is refused while it is composed, before anything expands;
* nesting deeper than :data:`MAX_DEPTH`.

Aliases and merge keys (``<<: *defaults``) within those bounds work as usual.
"""

from __future__ import annotations

import os

import yaml

from lifeline.config_schema import ConfigError

__all__ = ["MAX_ALIAS_NODES", "MAX_DEPTH", "MAX_FILE_BYTES", "read_yaml"]

MAX_FILE_BYTES = 1 << 20
"""A config file is small: more than 1 MiB is refused unread."""
MAX_ALIAS_NODES = 1000
"""Most nodes all the aliases of a file may stand for together (a config shares a few
sections at most; a billion-laughs document asks for 10⁹)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


def read_yaml(path: str | os.PathLike[str]) -> object:
    """The data in the YAML file ``path``; ``ConfigError`` (its ``file`` set) if the file
    cannot be read, is too large, is not UTF-8, is not YAML or is refused as above."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError("", f"cannot read the file: {exc.strerror or exc}", file=name) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError("", f"larger than the {MAX_FILE_BYTES}-byte (1 MiB) limit for a "
                          "config file", file=name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start})", file=name) from None
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    except ConfigError as exc:
        exc.file = name
        raise
    except yaml.MarkedYAMLError as exc:
        raise ConfigError("", f"not valid YAML: {_one_line(exc)}", file=name) from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an int too long, a bad date
        raise ConfigError("", f"not valid YAML: {' '.join(str(exc).split())}",
                          file=name) from None
    finally:
        loader.dispose()


def _one_line(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = exc.problem or exc.context or "error"
    return " ".join(f"{where}{what}".split())


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, alias bombs and deep nesting while it
    composes the node graph (before any alias is expanded)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str] = []
        self._sizes: dict[int, int] = {}
        """Expanded size (nodes, aliases counted in full) of every finished node, by id."""
        self._alias_nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._count_alias(_join(self._key_path(), _segment(index)))
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        if len(self._path) >= MAX_DEPTH:
            raise ConfigError(self._key_path(), f"nested deeper than {MAX_DEPTH} levels")
        self._path.append(_segment(index))
        try:
            node = super().compose_node(parent, index)  # type: ignore[arg-type]
            if isinstance(node, yaml.MappingNode):
                self._refuse_duplicates(node)
        finally:
            self._path.pop()
        if node is not None:
            self._sizes[id(node)] = 1 + sum(self._sizes[id(child)] for child in _children(node))
        return node

    def _count_alias(self, path: str) -> None:
        """Refuse the alias at ``path`` if it is recursive or aliases grow too large."""
        anchor = self.peek_event().anchor  # type: ignore[no-untyped-call]
        target = self.anchors.get(anchor)
        if target is None:
            return  # an undefined alias: the composer says so
        size = self._sizes.get(id(target))
        if size is None:
            raise ConfigError(path, f"alias *{anchor} refers to a node "
                              "that contains it (a recursive structure)")
        self._alias_nodes += size
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise ConfigError(path, f"aliases expand to more than {MAX_ALIAS_NODES} "
                              "nodes (a YAML alias bomb?); write the values out")

    def _refuse_duplicates(self, node: yaml.MappingNode) -> None:
        first: dict[tuple[str, str], yaml.Node] = {}
        for key, _value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                continue
            seen = first.setdefault((key.tag, key.value), key)
            if seen is not key:
                lines = f"lines {seen.start_mark.line + 1} and {key.start_mark.line + 1}"
                raise ConfigError(_join(self._key_path(), str(key.value)),
                                  f"duplicate key ({lines}); give each key once")

    def _key_path(self) -> str:
        path = ""
        for segment in self._path:
            path = _join(path, segment)
        return path


def _segment(index: object) -> str:
    """The key path segment of the node composed at ``index`` of its parent."""
    if isinstance(index, yaml.ScalarNode):
        return str(index.value)  # a mapping value: its key
    if isinstance(index, int):
        return f"[{index}]"  # a list item
    return ""  # the root, or a mapping key (it sits at its mapping's path)


def _join(path: str, segment: str) -> str:
    if not segment:
        return path
    if not path or segment.startswith("["):
        return f"{path}{segment}"
    return f"{path}.{segment}"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []

#!/usr/bin/env python3
"""The module import graph of each crate, and its cycles.

Every `use` and every path written out (`crate::…`, `super::…`, `self::…`, or a child module's
name) is an edge from the module that writes it to the module it names; `pub use` re-exports are
followed to the module that defines the item. Unit tests (`mod tests`) are left out. A module
naming one of its ancestors is no edge: the auth core's files extend the service their parent wires
(`impl AuthService`), which is the layering, not a cycle. What this cannot see: one module calling
another's `impl AuthService` method through `self` (no path is written); keep such calls flowing
from use cases to mechanisms.

    python3 scripts/module_graph.py          # fails (exit 1) on a cycle not allowed below
    python3 scripts/module_graph.py --dot    # the graph, for Graphviz
"""

import re
import sys
from pathlib import Path

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else Path(__file__).resolve().parent.parent
CRATES = {"app": ROOT / "app/src", "server": ROOT / "server/src", "frontend": ROOT / "frontend/src"}
# Leptos's server functions: their browser half calls through the client, which needs the session.
ALLOWED = [{"crate::server_fns", "crate::ui::client", "crate::ui::session"}]

PATH = re.compile(r"(?<![\w:])([a-z_][a-z0-9_]*)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE = re.compile(r"^\s*(pub(?:\([a-z]+\))?\s+)?use\s+([^;]+);", re.S | re.M)
INLINE_MOD = re.compile(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+(\w+)\s*\{")


def module_of(src: Path, file: Path) -> str:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return "::".join(["crate", *parts])


def expand(tree: str) -> list[str]:
    """`a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (renames dropped)."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner = tree[:start], tree[start + 1 : i]
                items, level, last = [], 0, 0
                for j, c in enumerate(inner + ","):
                    level += c == "{"
                    level -= c == "}"
                    if c == "," and level == 0:
                        if inner[last:j]:
                            items.append(inner[last:j])
                        last = j + 1
                return [p for item in items for p in expand(prefix + item)]
    return [tree]


def absolute(path: str, here: str, modules: set) -> list[str] | None:
    """`path` as written in module `here`, from the crate root; `None` for another crate's."""
    segments = path.split("::")
    base = here.split("::")
    if segments[0] == "crate":
        return segments
    if segments[0] == "self":
        return base + segments[1:]
    if segments[0] == "super":
        while segments and segments[0] == "super":
            base, segments = base[:-1], segments[1:]
        return base + segments
    # A child module's name (Rust 2018 paths are relative to the module they are written in).
    if "::".join([*base, segments[0]]) in modules:
        return base + segments
    return None


def sanitize(text: str) -> str:
    """The code with comments removed and the insides of string and char literals blanked (line
    breaks kept), so that neither a `//` in a URL nor a `{` in a format string misleads the scan."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif (m := re.match(r'b?r(#*)"', text[i:])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find('"' + m.group(1), i + m.end())
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^'\\])'", text[i:])):
            out.append("' '")
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_tests(code: str) -> str:
    """The code without its `mod tests { … }` blocks."""
    while (m := re.search(r"^\s*mod tests\s*\{", code, re.M)) :
        depth, i = 0, m.end() - 1
        for i in range(m.end() - 1, len(code)):
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            if depth == 0:
                break
        code = code[: m.start()] + code[i + 1 :]
    return code


def scan(src: Path):
    files, inline = {}, {}
    modules = set()
    for file in sorted(src.rglob("*.rs")):
        here = module_of(src, file)
        modules.add(here)
        code = strip_tests(sanitize(file.read_text()))
        # The module each line is in: the file's, or an inline `mod name { … }` within it.
        stack: list[tuple[str, int]] = []
        depth, line_module = 0, []
        for line in code.splitlines():
            m = INLINE_MOD.match(line)
            if m:
                stack.append((f"{stack[-1][0] if stack else here}::{m.group(1)}", depth))
                modules.add(stack[-1][0])
                inline[stack[-1][0]] = here
            line_module.append(stack[-1][0] if stack else here)
            depth += line.count("{") - line.count("}")
            while stack and depth <= stack[-1][1]:
                stack.pop()
        for m in re.finditer(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+(\w+)\s*;", code, re.M):
            modules.add(f"{here}::{m.group(1)}")
        files[here] = (code, line_module)
    refs, reexports = {}, {}
    for here, (code, line_module) in files.items():
        # `use` statements are read below, whole; here only the paths written in code.
        paths_only = USE.sub(lambda m: "\n" * m.group(0).count("\n"), code)
        for number, line in enumerate(paths_only.splitlines()):
            for found in PATH.finditer(line):
                full = absolute(found.group(0), line_module[number], modules)
                if full:
                    refs.setdefault(here, set()).add(tuple(full))
        for m in USE.finditer(code):
            current = line_module[code.count("\n", 0, m.start() + len(m.group(0)) - len(m.group(0).lstrip()))]
            for path in expand(m.group(2)):
                full = absolute(path, current, modules)
                if full is None:
                    continue
                refs.setdefault(here, set()).add(tuple(full))
                if m.group(1):
                    reexports[(current, full[-1])] = tuple(full)
    return modules, refs, reexports, inline


def resolve(path: tuple, modules: set, reexports: dict, seen=0) -> str | None:
    for n in range(len(path), 0, -1):
        prefix = "::".join(path[:n])
        if prefix in modules:
            rest = path[n:]
            if rest and (prefix, rest[0]) in reexports and seen < 8:
                target = reexports[(prefix, rest[0])]
                if target != path[: n + 1]:
                    return resolve(target + rest[1:], modules, reexports, seen + 1)
            return prefix
    return None


def graph(src: Path) -> dict[str, set[str]]:
    modules, refs, reexports, inline = scan(src)
    # An inline module (`mod browser { … }`) is part of its file's node.
    edges: dict[str, set[str]] = {m: set() for m in modules if m not in inline}
    for here, paths in refs.items():
        for path in paths:
            target = resolve(path, modules, reexports)
            target = inline.get(target, target)
            if target and target != here and not here.startswith(target + "::"):
                edges[here].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    failed = False
    for crate, src in CRATES.items():
        edges = graph(src)
        if "--dot" in sys.argv:
            print(f"digraph {crate} {{")
            for v in sorted(edges):
                for w in sorted(edges[v]):
                    print(f'  "{v}" -> "{w}";')
            print("}")
            continue
        for component in cycles(edges):
            allowed = any(component <= ok for ok in ALLOWED)
            mark = "allowed" if allowed else "CYCLE"
            failed |= not allowed
            print(f"{crate}: {mark}: " + " ↔ ".join(sorted(component)))
            for v in sorted(component):
                print(f"    {v} → " + ", ".join(sorted(w for w in edges[v] if w in component)))
        if "--dot" not in sys.argv:
            print(f"{crate}: {len(edges)} modules, {sum(map(len, edges.values()))} edges")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""ARCHITECTURE.md against the tree, and the package's structural rules.

- every module of the package is in ARCHITECTURE.md's module tree, and every
  module named there exists;
- the library (everything but `tfunsup3d/tools/`) never imports `tools/`;
- no cycle among the package's module-level imports (imports inside a
  function, e.g. `Unsup3D.from_checkpoint` -> `saving`, run after both
  modules are loaded and are not counted);
- no function or method over 60 lines (`def` to the end of its body).
"""

import ast
import os
import re
from typing import Dict, List, Set

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'tfunsup3d'
MAX_FUNCTION_LINES = 60


def package_modules(root: str = ROOT) -> Dict[str, str]:
  """Dotted module name -> path, for every .py file of the package."""
  modules = {}
  for dirpath, dirnames, filenames in os.walk(os.path.join(root, PACKAGE)):
    dirnames[:] = [d for d in dirnames if d != '__pycache__']
    for filename in filenames:
      if filename.endswith('.py'):
        path = os.path.join(dirpath, filename)
        name = os.path.relpath(path, root)[:-3].replace(os.sep, '.')
        modules[name.removesuffix('.__init__')] = path
  return modules


def documented_modules(text: str) -> Set[str]:
  """Relative paths (`tfunsup3d/render/camera.py`) of the module tree in
  ARCHITECTURE.md's fenced block that starts with `tfunsup3d/`."""
  block = re.search(r'```\n(tfunsup3d/\n.*?)```', text, re.S)
  assert block, 'ARCHITECTURE.md has no ``` block starting with tfunsup3d/'
  stack: List[str] = []  # (indent, directory) of the open directories
  found = set()
  for line in block.group(1).splitlines():
    token = line.strip().split(' ', maxsplit=1)[0]
    if not token or not (token.endswith('/') or token.endswith('.py')):
      continue  # a continuation line of a description
    indent = len(line) - len(line.lstrip(' '))
    stack = [(i, d) for i, d in stack if i < indent]
    if token.endswith('/'):
      stack.append((indent, token.rstrip('/')))
    else:
      found.add('/'.join([d for _, d in stack] + [token]))
  return found


def module_imports(modules: Dict[str, str], top_level: bool):
  """{module: set of package modules it imports} (top-level statements only
  when `top_level`, else every import anywhere in the file)."""
  graph = {}
  for name, path in modules.items():
    with open(path, encoding='utf-8') as f:
      tree = ast.parse(f.read())
    nodes = tree.body if top_level else ast.walk(tree)
    deps = set()
    for node in nodes:
      if isinstance(node, ast.ImportFrom) and node.module and (
          node.module.split('.')[0] == PACKAGE):
        for alias in node.names:
          sub = f'{node.module}.{alias.name}'
          deps.add(sub if sub in modules else node.module)
      elif isinstance(node, ast.Import):
        deps.update(a.name for a in node.names
                    if a.name.split('.')[0] == PACKAGE)
    graph[name] = {d for d in deps if d in modules and d != name}
  return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
  """Strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on_stack, cycles = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for other in sorted(graph[node]):
      if other not in index:
        visit(other)
        low[node] = min(low[node], low[other])
      elif other in on_stack:
        low[node] = min(low[node], index[other])
    if low[node] == index[node]:
      component = []
      while True:
        other = stack.pop()
        on_stack.discard(other)
        component.append(other)
        if other == node:
          break
      if len(component) > 1:
        cycles.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return cycles


def long_functions(modules: Dict[str, str]) -> List[str]:
  found = []
  for path in modules.values():
    with open(path, encoding='utf-8') as f:
      tree = ast.parse(f.read())
    for node in ast.walk(tree):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines = node.end_lineno - node.lineno + 1
        if lines > MAX_FUNCTION_LINES:
          found.append(f'{os.path.relpath(path, ROOT)}:{node.lineno} '
                       f'{node.name} ({lines} lines)')
  return found


def test_architecture_lists_every_module_and_only_real_ones():
  with open(os.path.join(ROOT, 'ARCHITECTURE.md'), encoding='utf-8') as f:
    documented = documented_modules(f.read())
  actual = {os.path.relpath(p, ROOT).replace(os.sep, '/')
            for p in package_modules().values()}
  assert not actual - documented, (
      f'modules missing from ARCHITECTURE.md: {sorted(actual - documented)}')
  assert not documented - actual, (
      f'ARCHITECTURE.md names modules that do not exist: '
      f'{sorted(documented - actual)}')


def test_documented_modules_parses_nesting():
  text = ('```\ntfunsup3d/\n  a.py   x\n         more words\n  sub/\n'
          '    b.py  y\n  c.py\n```\n')
  assert documented_modules(text) == {
      'tfunsup3d/a.py', 'tfunsup3d/sub/b.py', 'tfunsup3d/c.py'}


def test_library_never_imports_the_cli_layer():
  graph = module_imports(package_modules(), top_level=False)
  tools = f'{PACKAGE}.tools'
  offenders = sorted(f'{m} -> {d}' for m, deps in graph.items()
                     if not m.startswith(tools)
                     for d in deps if d.startswith(tools))
  assert not offenders, offenders


def test_no_import_cycle():
  cycles = find_cycles(module_imports(package_modules(), top_level=True))
  assert not cycles, cycles


def test_find_cycles_finds_one():
  graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
  assert find_cycles(graph) == [['a', 'b', 'c']]
  assert find_cycles({'a': {'b'}, 'b': set()}) == []


def test_no_function_over_60_lines():
  found = long_functions(package_modules())
  if found:
    pytest.fail('functions over 60 lines: ' + '; '.join(found))

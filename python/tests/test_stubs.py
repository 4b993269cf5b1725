"""The type stubs describe the module as it is: the same names, signatures and docstrings."""

import ast
import inspect
from pathlib import Path

import detbal
from detbal import _detbal

STUB = ast.parse((Path(detbal.__file__).parent / "_detbal.pyi").read_text())


def definitions(body):
    """The functions and classes a stub body defines, by name."""
    return {node.name: node for node in body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def public(names):
    return {n for n in names if not n.startswith("_") or n == "_repr_html_"}


def test_the_stub_defines_what_the_module_has():
    assert set(definitions(STUB.body)) == public(dir(_detbal))
    assert set(detbal.__all__) == public(dir(_detbal)) | {"__version__"}


def test_every_docstring_is_the_modules():
    for name, node in definitions(STUB.body).items():
        obj = getattr(_detbal, name)
        assert ast.get_docstring(node) == inspect.getdoc(obj), name
        if isinstance(node, ast.ClassDef) and name != "DetbalError":
            members = definitions(node.body)
            assert set(members) == public(vars(obj)), name
            for member, sub in members.items():
                assert ast.get_docstring(sub) == inspect.getdoc(getattr(obj, member)), f"{name}.{member}"


def parameters(node):
    """A stub function's parameter names, `self` left out, `**` marking the keywords."""
    names = [a.arg for a in node.args.args if a.arg != "self"]
    return names + (["**" + node.args.kwarg.arg] if node.args.kwarg else [])


def test_every_signature_is_the_modules():
    functions = [(getattr(_detbal, n), f) for n, f in definitions(STUB.body).items()]
    for name, node in definitions(STUB.body).items():
        if isinstance(node, ast.ClassDef) and name != "DetbalError":
            cls = getattr(_detbal, name)
            functions += [(getattr(cls, m), f) for m, f in definitions(node.body).items() if not f.decorator_list]
    checked = 0
    for obj, node in functions:
        if isinstance(node, ast.FunctionDef):
            actual = [
                ("**" if p.kind is p.VAR_KEYWORD else "") + p.name
                for p in inspect.signature(obj).parameters.values()
                if p.name != "self"
            ]
            assert actual == parameters(node), node.name
            checked += 1
    assert checked == 8

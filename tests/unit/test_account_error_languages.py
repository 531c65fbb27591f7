"""Every account refusal is a message template the catalogue translates (issue 19).

The refusals of shared/accounts (errors.py) are shown on the pages before sign-in, so each
needs its wording in every language of the console, with its particulars. They are not
listed anywhere by hand: `make i18n` extracts the templates the error classes are raised
with (babel.cfg names the classes as keywords). This fails when a refusal's message is not a
literal template (an f-string, a formatted string: extraction would miss it), when a new
error class is not a keyword of the extraction, or when a template has no translation.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

import shared.accounts
from services.review.console.pages import CATALOGUE, REVIEW
from services.review.console.wording import ENGLISH, Words
from shared.accounts.errors import AccountError, NotFound, SignInDelayed
from shared.accounts.passwords import WeakPassword, check_new_password
from shared.i18n import (
    Message,
    catalogue_path,
    missing_translations,
    read_catalogue,
    translations_from_po,
)
from shared.i18n import translated as in_language
from shared.web.accounts import account_message

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = ROOT / "shared" / "accounts"
PO = catalogue_path(REVIEW / "translations", "zh-Hans", CATALOGUE)


def _error_classes() -> set[str]:
    """The account error classes raised with a message (the others word their own, N_)."""
    for module in pkgutil.iter_modules(shared.accounts.__path__):
        importlib.import_module(f"shared.accounts.{module.name}")
    found, todo = set(), [AccountError]
    while todo:
        cls = todo.pop()
        if "message" in inspect.signature(cls.__init__).parameters:
            found.add(cls.__name__)
        todo += cls.__subclasses__()
    return found


ERRORS = _error_classes()


def _raised(path: Path) -> Iterator[tuple[int, ast.expr | None, bool]]:
    """Each construction of an account error in the file: its line, its message argument,
    and whether it is an error class's own `super().__init__`."""
    tree = ast.parse(path.read_text(), str(path))
    # The account errors of this file: its own (shared/accounts) or those it imports from
    # there (another service may have a NotFound of its own).
    named = (
        ERRORS
        if path.parent == ACCOUNTS
        else {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("shared.accounts")
            for alias in node.names
            if alias.name in ERRORS
        }
    )
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        by_name = isinstance(func, ast.Name) and func.id in named
        in_class = (
            path.parent == ACCOUNTS
            and isinstance(func, ast.Attribute)
            and func.attr == "__init__"
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "super"
        )
        if by_name or in_class:
            keyword = next((k.value for k in node.keywords if k.arg == "message"), None)
            yield node.lineno, node.args[0] if node.args else keyword, in_class


def _is_template(arg: ast.expr | None, in_class: bool) -> bool:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return True
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "N_":
        return isinstance(arg.args[0], ast.Constant)
    # An error class passing its own `message` parameter on (AccountError: as a Message).
    return in_class and isinstance(arg, ast.Name | ast.Attribute)


def test_every_account_refusal_is_raised_with_a_literal_template() -> None:
    sources = [
        p for top in ("shared", "services", "reechannel") for p in (ROOT / top).rglob("*.py")
    ]
    wrong = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sources
        for line, arg, in_class in _raised(path)
        if not _is_template(arg, in_class)
    ]
    assert not wrong, f"an account error's message must be a literal template: {wrong}"


def test_the_extraction_knows_every_account_error_class() -> None:
    with (ROOT / "babel.cfg").open() as cfg:
        _methods, options = parse_mapping_cfg(cfg)
    keywords = set(options["shared/accounts/**.py"]["keywords"])
    assert keywords >= ERRORS, f"add to babel.cfg's keywords: {sorted(ERRORS - keywords)}"


def test_every_account_refusal_has_its_translation() -> None:
    """The templates `make i18n` extracts from shared/accounts are all translated."""
    with (ROOT / "babel.cfg").open() as cfg:
        methods, options = parse_mapping_cfg(cfg)
    accounts = [(pattern, method) for pattern, method in methods if "accounts" in pattern]
    templates = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), accounts, options, keywords={"N_": None}
        )
    }
    assert "no person with id %(id)s" in templates, "the templates are extracted"
    assert "the e-mail address, password or code is wrong" in templates, "and the N_ ones"
    missing = missing_translations(read_catalogue(PO), sorted(templates))
    assert not missing, f"run `make i18n` and translate: {missing}"


def test_a_refusal_says_its_particulars_in_the_pages_language() -> None:
    chinese = Words("zh-Hans", translations_from_po(PO).gettext)
    delayed = str(SignInDelayed(12))
    assert delayed == "too many failed sign-ins; try again in 12 s"
    assert account_message(delayed, chinese) == "登录失败次数过多，请于 12 秒后重试"
    assert account_message(delayed, ENGLISH) == delayed, "English as the accounts word it"
    nobody = NotFound("no person with id %(id)s", id="p-42")
    assert str(nobody) == "no person with id p-42"
    assert account_message(str(nobody), chinese) == "没有编号为 p-42 的人员"
    try:
        check_new_password("short", "eva@example.eu")
    except WeakPassword as exc:
        assert exc.field == "password" and exc.status == 422
        assert account_message(str(exc), chinese) == "密码至少须 12 个字符"
    assert account_message("words of no template", chinese) == "words of no template"
    assert in_language(Message("the code is wrong"), chinese.gettext) != "the code is wrong"

"""Choosing a provider per kind from what the ``ai_*_providers`` hooks offer.

Each plugin's hook implementation is called on its own, so one that raises is reported and the
others still count. Settings name a provider per kind, or ``auto`` takes the first candidate, in
pluggy's call order, whose ``probe()`` passes. Nothing here ever stops the panel: every failure
ends up as text on the status page.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from hookspecs.ai import DEFAULTS, OPTIONAL_MEMBERS, PROVIDER_KINDS
from hookspecs.errors import ProviderUnavailable
from open1panel_ai import errors, i18n
from open1panel_ai.i18n import Message

log = logging.getLogger(__name__)

#: Seconds a kind with no usable provider waits before a call probes it again, so a proxy or
#: server that comes back is noticed by the next call, not only by the status page.
RECHECK_SECONDS = 5.0


@dataclass
class Candidate:
    """One provider class on offer, and what became of it when tried."""

    name: str
    plugin: str
    #: The provider class a plugin offered (with :func:`with_defaults` applied).
    cls: Callable[..., Any]
    usable: bool | None = None  # None: not tried
    reason: str | None = None
    fix: str | None = None
    down: Any = None  # the instance whose probe said it cannot work now

    def public(self, language: str = i18n.DEFAULT_LANGUAGE) -> dict[str, Any]:
        return {
            "name": self.name,
            "plugin": self.plugin,
            "usable": self.usable,
            "reason": i18n.render(self.reason, language),
            "fix": i18n.render(self.fix, language),
        }


@dataclass
class Choice:
    """The outcome of choosing a provider for one kind."""

    kind: str
    setting: str
    provider: Any = None
    candidates: list[Candidate] = field(default_factory=list)
    hook_errors: list[dict[str, str]] = field(default_factory=list)
    reason: str | None = None
    fix: str | None = None
    #: When no provider is usable: the one meant for this kind (the one in use before, or the
    #: only one tried) whose probe failed. Some work needs less than a probe asks for.
    down: Any = None
    #: When it was chosen (``time.monotonic()``).
    chosen_at: float = field(default_factory=time.monotonic)

    @property
    def usable(self) -> bool:
        return self.provider is not None

    def public(self, language: str = i18n.DEFAULT_LANGUAGE) -> dict[str, Any]:
        """What the status page shows, its reasons and fixes in ``language`` where the
        provider wrote them as Messages."""
        return {
            "kind": self.kind,
            "setting": self.setting,
            "provider": getattr(self.provider, "name", None),
            "usable": self.usable,
            "reason": i18n.render(self.reason, language),
            "fix": i18n.render(self.fix, language),
            "candidates": [c.public(language) for c in self.candidates],
            "errors": self.hook_errors,
        }


class ProviderRegistry:
    """Finds, chooses and caches one provider instance per kind."""

    def __init__(
        self, plugin_manager: pluggy.PluginManager, settings: Mapping[str, str], choices: Mapping[str, str]
    ) -> None:
        self._pm = plugin_manager
        self._settings = settings
        self._setting_of = dict(choices)
        self._chosen: dict[str, Choice] = {}
        self._lock = threading.Lock()

    def get(self, kind: str) -> Any:
        """The chosen provider of ``kind``; raises a 503 :class:`~errors.ApiError` if none.
        A kind found unusable more than :data:`RECHECK_SECONDS` ago is probed again first."""
        choice = self.choose(kind)
        if not choice.usable and time.monotonic() - choice.chosen_at >= RECHECK_SECONDS:
            choice = self.choose(kind, refresh=True)
        if not choice.usable:
            raise errors.UpstreamUnavailable(
                choice.reason or Message("provider.none_usable", kind=_title(kind)),
                details={"kind": kind, "fix": choice.fix},
                code="provider_unavailable",
            )
        return choice.provider

    def get_even_if_down(self, kind: str) -> Any:
        """The chosen provider of ``kind`` or, when its probe failed, that provider anyway
        (:attr:`Choice.down`), for work that needs less than its probe asks for: nginx's files
        can lose a binding while nginx is stopped. A 503 like :meth:`get` when there is none."""
        choice = self.choose(kind)
        if choice.provider is None and choice.down is not None:
            return choice.down
        return self.get(kind)

    def choose(self, kind: str, refresh: bool = False) -> Choice:
        """Choose (once, or again with ``refresh``) the provider of ``kind``.

        A provider may hold live state (the MCP runtime supervises the running servers), so a
        refresh probes the instance in use again rather than building another of its class,
        and keeps it when it is chosen again.
        """
        with self._lock:
            if refresh or kind not in self._chosen:
                in_use = self._chosen[kind].provider if kind in self._chosen else None
                self._chosen[kind] = self._choose(kind, in_use)
            return self._chosen[kind]

    def status(self, language: str = i18n.DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
        """Every kind's choice, probed afresh: what the status page shows, in ``language``."""
        return [self.choose(kind, refresh=True).public(language) for kind in PROVIDER_KINDS]

    def _candidates(self, kind: str) -> tuple[list[Candidate], list[dict[str, str]]]:
        hook = getattr(self._pm.hook, f"ai_{kind}_providers")
        candidates: list[Candidate] = []
        hook_errors: list[dict[str, str]] = []
        for impl, offered_by in self._each_plugin(hook):
            try:
                results = offered_by()
                offered = (results[0] if results else None) or []
            except Exception as exc:
                log.exception("plugin %s failed in ai_%s_providers", impl.plugin_name, kind)
                hook_errors.append({"plugin": impl.plugin_name, "error": describe_error(exc)})
                continue
            for cls in offered:
                name = getattr(cls, "name", None)
                if not isinstance(name, str) or not name:
                    hook_errors.append({"plugin": impl.plugin_name, "error": f"{cls!r} has no 'name' attribute"})
                    continue
                candidates.append(Candidate(name=name, plugin=impl.plugin_name, cls=with_defaults(kind, cls)))
        return candidates, hook_errors

    def _each_plugin(self, hook: pluggy.HookCaller) -> list[tuple[Any, Callable[[], list[Any]]]]:
        """Each plugin's implementation of ``hook``, in pluggy's call order, with a caller that
        runs it alone through pluggy (its tracing and the plugins' wrappers included), so one
        plugin that raises does not hide what the others offer."""
        impls = [impl for impl in hook.get_hookimpls() if not (impl.hookwrapper or impl.wrapper)]
        return [
            (impl, self._pm.subset_hook_caller(hook.name, [other.plugin for other in impls if other is not impl]))
            for impl in reversed(impls)
        ]

    def _choose(self, kind: str, in_use: Any = None) -> Choice:
        setting = self._setting_of.get(kind, "auto")
        title = _title(kind)
        candidates, hook_errors = self._candidates(kind)
        choice = Choice(kind=kind, setting=setting, candidates=candidates, hook_errors=hook_errors)
        if setting == "none":
            choice.reason = Message("provider.turned_off", kind=title)
            return choice
        if setting != "auto":
            named = [c for c in candidates if c.name == setting]
            if not named:
                offered = ", ".join(c.name for c in candidates) or "none"
                choice.reason = Message("provider.not_installed", kind=title, name=setting, installed=offered)
                choice.fix = Message("provider.fix.install_or_auto", setting=f"OPEN1PANEL_AI_{kind.upper()}_PROVIDER")
                return choice
            to_try = named[:1]
        else:
            to_try = candidates
        for candidate in to_try:
            provider = self._try(candidate, in_use)
            if provider is not None:
                choice.provider = provider
                return choice
        choice.down = next(
            (c.down for c in to_try if c.down is not None and c.down is in_use),
            to_try[0].down if len(to_try) == 1 else None,
        )
        if not candidates:
            choice.reason = Message("provider.none_installed", kind=title)
            choice.fix = Message("provider.fix.install_one", kind=title)
        elif len(to_try) == 1:
            choice.reason, choice.fix = to_try[0].reason, to_try[0].fix
        else:
            choice.reason = Message(
                "provider.none_can_work",
                kind=title,
                reasons=[Message("provider.candidate_reason", name=c.name, reason=c.reason) for c in to_try],
            )
            choice.fix = next((c.fix for c in to_try if c.fix), None)
        return choice

    def _try(self, candidate: Candidate, in_use: Any = None) -> Any:
        """The candidate's provider if its probe passes, else None with the reason recorded.
        ``in_use``, the provider chosen before, is probed itself when it is of this class."""
        provider: Any = None
        try:
            provider = in_use if type(in_use) is candidate.cls else candidate.cls(self._settings)
            provider.probe()
        except ProviderUnavailable as exc:
            candidate.usable, candidate.reason, candidate.fix = False, exc.reason, exc.fix or None
            candidate.down = provider
            return None
        except Exception as exc:
            log.warning("provider %s from %s failed its probe", candidate.name, candidate.plugin, exc_info=True)
            candidate.usable = False
            candidate.reason = Message("provider.check_failed", error=describe_error(exc))
            return None
        candidate.usable = True
        return provider


_completed: dict[tuple[str, type], type] = {}
_completed_lock = threading.Lock()


def with_defaults(kind: str, cls: Any) -> Any:
    """``cls``, or a subclass of it that adds the defaults of the optional members of its
    kind's protocol (:data:`hookspecs.ai.DEFAULTS`) that it lacks, so that every provider the
    panel holds has every member of its protocol. The same class always gets the same subclass,
    so a provider in use is recognised when it is chosen again."""
    defaults = DEFAULTS.get(kind)
    if (
        defaults is None
        or not isinstance(cls, type)
        or issubclass(cls, defaults)
        or all(hasattr(cls, member) for member in OPTIONAL_MEMBERS.get(kind, ()))
    ):
        return cls
    with _completed_lock:
        completed = _completed.get((kind, cls))
        if completed is None:
            completed = _completed[(kind, cls)] = type(
                cls.__name__,
                (cls, defaults),
                {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__},
            )
        return completed


def _title(kind: str) -> Message:
    """How the status texts name a kind: "GPU", "domain"."""
    return Message(f"provider.kind.{kind}")


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, one per inner exception of a group, for logs and
    the reasons shown to an admin."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe_error(inner) for inner in exc.exceptions)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

"""A tiny name -> class registry shared by every pipeline stage.

Stage modules register their classes when imported; ``sceneforge.pipeline`` imports the built-in
ones, so build components through the pipeline (or import the stage module) first.

A stage class is registered under a kind ("perception", "amodal", "shape") and a name; it is then
built from a name and keyword arguments, and the keyword arguments are its recorded config, so a
pipeline can be written to JSON and rebuilt exactly (the diffusers habit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sceneforge.errors import InputError, SceneforgeError

T = TypeVar("T")

_REGISTRY: dict[str, dict[str, type]] = {}


class UnknownComponentError(SceneforgeError, KeyError):
    """A component name that no class is registered under."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def register(kind: str, name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: make ``cls`` buildable as ``create(kind, name, **config)``."""

    def decorator(cls: type[T]) -> type[T]:
        table = _REGISTRY.setdefault(kind, {})
        if name in table and table[name] is not cls:
            raise ValueError(f"{kind} component {name!r} is already registered by {table[name].__name__}")
        table[name] = cls
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def available(kind: str) -> list[str]:
    """Sorted names registered for ``kind`` (empty when none)."""
    return sorted(_REGISTRY.get(kind, {}))


def create(kind: str, name: str, **config: Any) -> Any:
    """Build the ``kind`` component registered as ``name`` with ``config`` as keyword arguments.

    An unknown name or setting raises UnknownComponentError; a setting out of its range (a
    ValueError of the constructor) raises InputError naming the component."""
    table = _REGISTRY.get(kind, {})
    if name not in table:
        raise UnknownComponentError(f"unknown {kind} component {name!r}; available: {', '.join(sorted(table)) or 'none'}")
    try:
        return table[name](**config)
    except InputError:
        raise
    except TypeError as exc:
        raise UnknownComponentError(f"{kind} component {name!r} rejects its config {dict(config)}: {exc}") from exc
    except ValueError as exc:  # a setting out of its range, as the component's constructor checks it
        raise InputError(None, f"{kind} component {name!r}: {exc}") from exc


class Component:
    """Base of registered stage classes: remembers the keyword arguments it was built with."""

    registry_name: str = "unregistered"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        original_init = cls.__dict__.get("__init__")
        if original_init is None:
            return

        def recording_init(self: Any, *args: Any, **init_kwargs: Any) -> None:
            if args:
                raise TypeError(f"{cls.__name__} takes keyword arguments only (they are its recorded config)")
            if "_config" not in self.__dict__:  # the outermost __init__ records the config
                self._config = dict(init_kwargs)
            original_init(self, **init_kwargs)

        recording_init.__doc__ = original_init.__doc__
        cls.__init__ = recording_init  # type: ignore[misc]

    @property
    def config(self) -> dict[str, Any]:
        """The keyword arguments given at construction (JSON-serialisable by convention)."""
        return dict(getattr(self, "_config", {}))

    def describe(self) -> dict[str, Any]:
        """``{"name": registry name, "config": {...}}`` — enough to rebuild with :func:`from_description`."""
        return {"name": self.registry_name, "config": self.config}


def from_description(kind: str, description: Mapping[str, Any] | str) -> Any:
    """Rebuild a component from ``describe()``'s dictionary, or from a bare name; a dictionary
    without "name", with keys other than "name" and "config", or whose config is not a dictionary
    raises UnknownComponentError (a setting beside "name" would otherwise be silently ignored)."""
    if isinstance(description, str):
        return create(kind, description)
    unknown = sorted(set(description) - {"name", "config"})
    config = description.get("config", {})
    if "name" not in description or unknown or not isinstance(config, Mapping):
        raise UnknownComponentError(
            f"{kind} description {dict(description)} must be {{\"name\": ..., \"config\": {{setting: value}}}}"
            + (f"; move {', '.join(map(repr, unknown))} into \"config\"" if unknown else ""))
    return create(kind, str(description["name"]), **dict(config))

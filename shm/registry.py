"""Registry: rings and state blocks declared once by name, dtype, capacity and policy.

Every process attaches by name through a Registry, so a ring's shape is written in one place
(the trading registry is ``procs.core.registry``; shm itself knows nothing of trading).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import layout as L
from .idle import Waiter
from .ring import Consumer, Producer
from .seqlock import StateReader, StateWriter


@dataclass(frozen=True)
class RingSpec:
    """A ring's declaration: name, record dtype, capacity (power of 2), policy, named consumers."""

    name: str
    dtype: np.dtype
    capacity: int
    policy: int
    consumers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.capacity <= 0 or self.capacity & (self.capacity - 1):
            raise ValueError(f"capacity must be a power of 2: capacity={self.capacity} ring={self.name}")
        if np.dtype(self.dtype).itemsize % L.LINE:
            raise ValueError(f"record size must be a multiple of 64: itemsize={np.dtype(self.dtype).itemsize} "
                             f"ring={self.name}")
        if self.policy not in (L.POLICY_BROADCAST, L.POLICY_GATING):
            raise ValueError(f"policy must be broadcast or gating: policy={self.policy} ring={self.name}")


@dataclass(frozen=True)
class StateSpec:
    """A state block's declaration: name (may contain ``{symbol}``), dtype, record count."""

    name: str
    dtype: np.dtype
    count: int = 1


@dataclass
class Registry:
    """Named declarations; lookups raise with the unknown name and the known ones."""

    rings: dict[str, RingSpec] = field(default_factory=dict)
    states: dict[str, StateSpec] = field(default_factory=dict)

    def ring(self, spec: RingSpec) -> RingSpec:
        if spec.name in self.rings:
            raise ValueError(f"ring declared twice: ring={spec.name}")
        self.rings[spec.name] = spec
        return spec

    def state(self, spec: StateSpec) -> StateSpec:
        if spec.name in self.states:
            raise ValueError(f"state block declared twice: state={spec.name}")
        self.states[spec.name] = spec
        return spec

    def ring_spec(self, name: str) -> RingSpec:
        try:
            return self.rings[name]
        except KeyError:
            raise KeyError(f"unknown ring: ring={name} known={','.join(sorted(self.rings))}") from None

    def state_spec(self, name: str) -> StateSpec:
        if name in self.states:
            return self.states[name]
        for pattern, spec in self.states.items():
            if "{" in pattern:
                prefix = pattern.split("{", 1)[0]
                if name.startswith(prefix):
                    return StateSpec(name, spec.dtype, spec.count)
        raise KeyError(f"unknown state block: state={name} known={','.join(sorted(self.states))}")

    # -- attach helpers ---------------------------------------------------------------------
    def producer(self, instance: str, name: str) -> Producer:
        s = self.ring_spec(name)
        return Producer.create(instance, s.name, s.dtype, s.capacity, s.policy, s.consumers)

    def consumer(self, instance: str, name: str, consumer: str | None = None, timeout: float = 5.0,
                 waiter: Waiter | None = None) -> Consumer:
        s = self.ring_spec(name)
        if consumer is not None and consumer not in s.consumers:
            raise ValueError(f"consumer not declared for ring: ring={name} consumer={consumer} "
                             f"declared={','.join(s.consumers) or '-'}")
        return Consumer.attach(instance, s.name, s.dtype, consumer, timeout=timeout, waiter=waiter)

    def writer(self, instance: str, name: str) -> StateWriter:
        s = self.state_spec(name)
        return StateWriter.create(instance, s.name, s.dtype, s.count)

    def reader(self, instance: str, name: str, timeout: float = 5.0) -> StateReader:
        s = self.state_spec(name)
        return StateReader.attach(instance, s.name, s.dtype, timeout=timeout)

"""A campaign's mass balance: every metal the black mass brought in, and where it ended up.

Pure bookkeeping over the simulator's streams; never changes them. Closure is the check that
the simulation lost nothing: in = out within 1 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hal.sim.chemistry import METALS, PCAM_METALS, Liquor
from hal.sim.filtration import Cake
from hal.sim.residue import Residue

METAL_NAMES = tuple(m.name for m in METALS)
_MOLAR_G = {m.name: m.molar_mass_g for m in METALS}
# What the product's specification lists as impurities (battery-grade pCAM).
IMPURITIES = ("fe", "al", "cu", "li")


@dataclass(frozen=True, slots=True)
class Stream:
    """Moles of each metal in one outgoing stream."""

    name: str
    mol: dict[str, float]

    @classmethod
    def of(
        cls,
        name: str,
        *,
        liquor: Liquor | None = None,
        residue: Residue | None = None,
        cake: Cake | None = None,
    ) -> Stream:
        """The metals in a liquor (dissolved and precipitated), a residue or a filter cake."""
        mol = dict.fromkeys(METAL_NAMES, 0.0)
        parts: list[tuple[Liquor | None, Residue | None]] = [(liquor, residue)]
        if cake is not None:
            parts += [(cake.solids, cake.residue), (cake.entrained, None)]
        for part_liquor, part_residue in parts:
            for metal in METAL_NAMES:
                if part_liquor is not None:
                    mol[metal] += part_liquor.metal_total(metal)
                if part_residue is not None:
                    mol[metal] += part_residue.metal(metal)
        return cls(name=name, mol=mol)


@dataclass(slots=True)
class MassBalance:
    """Metals in (the black mass charged, or a synthetic feed) against every stream out."""

    metals_in: dict[str, float]
    streams: list[Stream] = field(default_factory=list)
    product: Cake | None = None

    def add(self, stream: Stream) -> None:
        """One more outgoing stream."""
        self.streams.append(stream)

    def summary(self) -> dict[str, Any]:
        """`metals_in_mol`, `metals_in_product_mol`, `recovery_pct`, impurities (ppm) in the
        product, `closure_pct` over all metals and per metal, and each stream."""
        out = dict.fromkeys(METAL_NAMES, 0.0)
        for stream in self.streams:
            for name, mol in stream.mol.items():
                out[name] += mol
        product = Stream.of("product", cake=self.product).mol if self.product else {}
        total_in = sum(self.metals_in.values())
        closure = 100.0 * sum(out.values()) / total_in if total_in > 0 else None
        return {
            "metals_in_mol": _rounded(self.metals_in),
            "metals_in_product_mol": _rounded(product),
            "recovery_pct": {
                name: round(100.0 * product.get(name, 0.0) / self.metals_in[name], 2)
                for name in PCAM_METALS
                if self.metals_in.get(name, 0.0) > 0
            },
            "product_kg": round(self.product.dry_kg(), 4) if self.product else 0.0,
            "impurities_ppm": self._impurities_ppm(),
            "closure_pct": None if closure is None else round(closure, 3),
            "closure_pct_by_metal": {
                name: round(100.0 * out[name] / mol_in, 3)
                for name, mol_in in self.metals_in.items()
                if mol_in > 1e-9
            },
            "streams_mol": {s.name: _rounded(s.mol) for s in self.streams},
        }

    def _impurities_ppm(self) -> dict[str, float]:
        if self.product is None:
            return {}
        mass_kg = self.product.dry_kg()
        if mass_kg <= 0.0:
            return {}
        mol = Stream.of("product", cake=self.product).mol
        ppm = {
            name: round(mol[name] * _MOLAR_G[name] / 1000.0 / mass_kg * 1e6, 1)
            for name in IMPURITIES
        }
        entrained, solids = self.product.entrained, self.product.solids
        ppm["na"] = round((entrained.sodium + solids.sodium) * 22.99 / 1000.0 / mass_kg * 1e6, 1)
        sulfur = entrained.sulfate + solids.sulfate
        ppm["s"] = round(sulfur * 32.06 / 1000.0 / mass_kg * 1e6, 1)
        return ppm


def _rounded(mol: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 5) for name, value in mol.items()}

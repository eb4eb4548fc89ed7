"""Provider presets (placeholder until the protocol engineer fills the table)."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    key: str
    label: str


PRESETS = {"custom": Preset("custom", "Custom")}

"""A local Microsoft Dataverse Web API (v9.2) emulator on SQLite, with fault injection."""

from .config import DEFAULT_ORGANIZATIONS, EmulatorConfig
from .runner import Emulator, run_emulator, start_emulator

__all__ = ["DEFAULT_ORGANIZATIONS", "Emulator", "EmulatorConfig", "run_emulator", "start_emulator"]

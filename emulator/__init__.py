"""A local Microsoft Dataverse Web API (v9.2) emulator over SQLite, with fault injection for tests."""

from .config import DEFAULT_ORGANIZATIONS, EmulatorConfig
from .runner import Emulator, run_emulator, start_emulator

__all__ = ["DEFAULT_ORGANIZATIONS", "Emulator", "EmulatorConfig", "run_emulator", "start_emulator"]

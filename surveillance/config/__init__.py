"""Configuration: strict models (:mod:`.models`) and the file loader (:mod:`.loader`)."""

from surveillance.config.loader import ConfigError, ConfigProblem, load_config, parse_config
from surveillance.config.models import AppConfig, CameraConfig, PlatformConfig

__all__ = [
    "AppConfig",
    "CameraConfig",
    "ConfigError",
    "ConfigProblem",
    "PlatformConfig",
    "load_config",
    "parse_config",
]

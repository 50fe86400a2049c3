"""AIGC Demo Studio entry point (Hugging Face Spaces runs ``python app.py``)."""

from aigc_demo.__main__ import configure_logging, settings_or_exit
from aigc_demo.app_services import build_services
from aigc_demo.ui.demo import create_demo, launch_options

configure_logging()
settings = settings_or_exit(engines=True)
services = build_services(settings)
demo = create_demo(settings, services=services)  # starts loading the text model in the background (AIGC_PRELOAD)

if __name__ == "__main__":
    demo.launch(**launch_options(settings, demo, services))

"""cl_nas: condensed memory for continual learning and proxy neural architecture search.

Data flows one way: dataset -> condenser -> synthetic set -> (CL buffer | NAS proxy) -> results.
"""

from cl_nas._compat import ensure_torchvision_importable

ensure_torchvision_importable()  # must run before anything imports torchvision

__version__ = "0.1.0"

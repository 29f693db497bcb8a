"""A fleet of learning devices: federated averaging of the core's integer weights with Flower.

- ``fedavg``: the integer FedAvg rule (exact, deterministic) beside the float mirror's, and IID / Dirichlet
  splits of a data set across devices (numpy only).
- ``client``: what one device does in a round (any ``IntegerEngine``: the host core ``FixedNet`` or a board's
  ``DeviceNet``; or the float mirror), and the bytes it exchanges over the serial link.
- ``flower``: the Flower ``ClientApp``, the integer-averaging strategy and simulated fleets on Ray (needs the
  optional extra ``edgebp[fleet]``: ``flwr[simulation]``).
- ``sweep``: sweep jobs as Ray tasks on a cluster, or in a local process pool.

See docs/fleet.md.
"""
from .fedavg import (average_int, average_float, dirichlet_split, fedavg_float, fedavg_int, iid_split, labels_of,
                     parse_split, split_rows)

__all__ = ["average_int", "average_float", "dirichlet_split", "fedavg_float", "fedavg_int", "iid_split",
           "labels_of", "parse_split", "split_rows"]

"""Change baskets (docs/formats/basket.md): the operation model (:mod:`ssm.basket.ops`)
and the file format (:mod:`ssm.basket.fmt`).

    from ssm.basket import Operation, read_basket, write_basket
"""

from ssm.basket.fmt import (
    FORMAT_VERSION,
    MAGIC,
    Basket,
    is_basket,
    read_basket,
    read_key,
    verify_basket,
    write_basket,
)
from ssm.basket.ops import KINDS, Operation

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "KINDS",
    "Basket",
    "Operation",
    "is_basket",
    "read_basket",
    "read_key",
    "verify_basket",
    "write_basket",
]

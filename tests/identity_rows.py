"""Reading lam and partners back from mixed identity rows.

Example `k` of a test set is row `k` of an identity matrix (its "id" is the
column of its 1). After mixing, the row at batch position `r` must be
`lam_r * e_{ids[r]} + (1 - lam_r) * e_{ids[p_r]}` with `p` a permutation of
the batch positions: `decode_identity_rows` checks exactly that, so no
example is lost, duplicated, reordered or taken from another batch, and
returns `lam` and `p` for further checks.
"""

import numpy as np


def decode_identity_rows(x, ids, atol=1e-6):
    """Checks that `x` mixes the identity rows `ids` and decodes it.

    Args:
        x: the mixed rows, shape `[B, N]` (N >= every id).
        ids: the id of the example expected at each batch position, `[B]`.
        atol: tolerance for the float comparisons.

    Returns:
        `(lam, partner)`: the weight of each row's own example (>= 0) and
        the batch position of its partner (`r` itself when the row shows no
        other example), a permutation of `range(B)`.
    """
    x = np.asarray(x, np.float64)
    ids = np.asarray(ids)
    size = len(ids)
    assert x.shape[0] == size, f"batch of {x.shape[0]} rows, {size} ids"
    assert len(set(ids.tolist())) == size, "ids must be distinct"
    assert np.all(np.isfinite(x)), "mixing created a NaN or inf"
    assert x.min() >= -atol, f"negative weight {x.min()}"
    np.testing.assert_allclose(x.sum(1), 1.0, atol=atol)
    others = np.delete(x, ids, axis=1)
    if others.size:
        assert others.max() <= atol, "a row holds an example of another batch"
    weights = x[:, ids]
    lam = np.diag(weights).copy()
    off = weights - np.diag(lam)
    assert ((off > atol).sum(1) <= 1).all(), "a row mixes three examples"
    moved = off.max(1) > atol
    partner = np.where(moved, off.argmax(1), np.arange(size))
    assert sorted(partner.tolist()) == list(range(size)), (
        f"partners {partner.tolist()} are not a permutation"
    )
    np.testing.assert_allclose(
        off[np.arange(size), partner][moved], 1 - lam[moved], atol=atol
    )
    assert (lam >= 0).all() and (lam <= 1 + atol).all()
    return lam, partner

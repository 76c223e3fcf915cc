"""Hypothesis strategies for topics and filters over a few levels, so random ones collide:
`$` first levels, empty levels (`a//b`, `/`), `+` and `#` alone."""

from __future__ import annotations

from hypothesis import strategies as st

LEVELS = ["a", "b", "", "$x", "$SYS"]

levels = st.sampled_from(LEVELS)
topics = st.lists(levels, min_size=1, max_size=4).map("/".join).filter(bool)
plain_filters = st.one_of(
    st.just("#"),
    st.just("+"),
    st.builds(
        lambda body, tail: "/".join([*body, *tail]),
        st.lists(st.one_of(levels, st.just("+")), min_size=1, max_size=4),
        st.sampled_from([[], ["#"]]),
    ).filter(bool),
)

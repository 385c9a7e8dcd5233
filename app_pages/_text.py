"""Text that holds user data (labels, names, texts) shown in Streamlit's Markdown elements.

Streamlit renders the message of ``st.success``, ``st.info``, ``st.warning``, ``st.error``,
``st.markdown`` and ``st.caption`` as Markdown (links, images, headings, ``:colour[...]``,
``$maths$``). A label such as ``![x](http://host/p.png)`` inside a sentence must stay text, so
every ASCII punctuation character is backslash-escaped (CommonMark shows an escaped character
as itself).
"""

from __future__ import annotations

from actions import markdown_text

__all__ = ["plain"]


def plain(text: object) -> str:
    """``text`` with every ASCII punctuation character escaped, so Markdown shows it as typed
    (:func:`actions.markdown_text`, which the data card uses too).

    Examples
    --------
    >>> print(plain("label ![x](h/p.png) *bold* 0.05"))
    label \\!\\[x\\]\\(h\\/p\\.png\\) \\*bold\\* 0\\.05
    """
    return markdown_text(text)

"""Text layout of the commands' reports: aligned tables and counted nouns."""

__all__ = ["format_table", "count"]


def format_table(headers, rows, align=None):
    """Rows of strings as aligned columns: text left-aligned, numbers right."""
    align = align or ["<"] + [">"] * (len(headers) - 1)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [f"{str(cell):{a}{w}}" for cell, a, w in zip(row, align, widths)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def count(n, singular, plural=None):
    """'1 pair', '3 pairs'."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"

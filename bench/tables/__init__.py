"""Paper-style tables: building, columns, marks, legend, Markdown and LaTeX rendering."""

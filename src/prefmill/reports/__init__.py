"""Build reports: the aggregates of a ref's tables (``data``) and the self-contained HTML page
drawn from them with plotly (``html``)."""

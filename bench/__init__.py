"""python -m bench: Orderflow measured against its ceiling, side by side in one run."""

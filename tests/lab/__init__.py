"""Lab tests: the network lab, the reliability matrix and the demo."""

"""Small pure tensor ops shared by every layer (a leaf: imports no other isoeps package)."""

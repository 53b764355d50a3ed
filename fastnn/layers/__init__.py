"""Forward/backward layer functions (the CS231n contract)."""

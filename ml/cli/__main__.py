"""``python -m ml.cli`` runs ``atgwin`` with this interpreter (no ``atgwin`` program on ``PATH`` needed)."""

from ml.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    main()

"""`python -m chain.contracts`: recompile the contracts and rewrite the shipped artifacts."""

from chain.contracts import write_shipped_artifacts

if __name__ == "__main__":
    for path in write_shipped_artifacts():
        print(path)

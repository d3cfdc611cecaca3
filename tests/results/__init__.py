"""Store, index, regress and ownership tests (a package, so that the regress and verified tests
import the run-folder factory of test_results_store relatively)."""

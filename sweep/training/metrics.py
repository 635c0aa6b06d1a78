"""The metric schema: what a trial reports every epoch, and what its run keeps from the last."""

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
TEST_METRICS = ("test_loss", "test_accuracy")
# Results a trial's run keeps only as summaries (by these names) from the last epoch it reported
# (tracking.SweepTracker.end_trial): the test split judges the final model only, not each epoch's,
# and the rest are measured once, after the last epoch.
LAST_RESULTS = {
    "test_loss": "final_test_loss",
    "test_accuracy": "final_test_accuracy",
    "bn_variance_shift": "bn_variance_shift",
    "bn_variance_shift_expected": "bn_variance_shift_expected",
    "val_accuracy_bn_recalibrated": "final_val_accuracy_bn_recalibrated",
    "test_accuracy_bn_recalibrated": "final_test_accuracy_bn_recalibrated",
}

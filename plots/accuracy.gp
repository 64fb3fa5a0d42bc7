# Train and test accuracy per epoch, one line per mode (fp32 dashed), and each mode minus fp32.
# Usage: gnuplot -c plots/accuracy.gp RUN_DIR  ->  RUN_DIR/plots/accuracy.png, accuracy.svg
plotname = 'accuracy'
W = 1400
H = 950
rundir = ARG1
plotsdir = ARG0[1:strlen(ARG0)-strlen('accuracy.gp')]
load plotsdir.'style.gp'
train_col = 'train_acc'
test_col = 'test_acc'
factor = 100
what = 'accuracy'
What = 'Accuracy'
ylab = 'accuracy (% of samples classified correctly)'
dlab = 'accuracy − fp32 accuracy (percentage points)'
load plotsdir.'epoch_curves.gp'

# Train and test loss per epoch, one line per mode (fp32 dashed), and each mode minus fp32.
# Usage: gnuplot -c plots/loss.gp RUN_DIR  ->  RUN_DIR/plots/loss.png, loss.svg
plotname = 'loss'
W = 1400
H = 950
rundir = ARG1
plotsdir = ARG0[1:strlen(ARG0)-strlen('loss.gp')]
load plotsdir.'style.gp'
train_col = 'train_loss'
test_col = 'test_loss'
factor = 1
what = 'loss'
What = 'Loss'
ylab = 'cross-entropy loss (nats per sample)'
dlab = 'loss − fp32 loss (nats per sample)'
load plotsdir.'epoch_curves.gp'

# Training throughput per mode as bars (samples/s over epochs 2..N; epoch 1 is warm-up), each
# labelled with its speedup over fp32. Reads RUN_DIR/plots/throughput.csv, which `ampbench
# report` derives from epochs.csv (mode,samples_per_s,speedup_vs_fp32,speedup_label).
# Usage: gnuplot -c plots/throughput.gp RUN_DIR  ->  RUN_DIR/plots/throughput.png, .svg
plotname = 'throughput'
W = 1100
H = 620
rundir = ARG1
plotsdir = ARG0[1:strlen(ARG0)-strlen('throughput.gp')]
load plotsdir.'style.gp'
data = derived_dir.'/throughput.csv'

stats data using (column('samples_per_s')) nooutput
nbars = STATS_records
W = W > 200 + 120 * nbars ? W : 200 + 120 * nbars   # room for each bar's label
ymax = STATS_max
set xrange [-0.6:nbars-0.4]
set yrange [0:ymax*1.22]
set ylabel 'training throughput (samples/s, higher is better)'
set xlabel 'mode'
set xtics scale 0 noenhanced
set grid noxtics ytics
set style fill solid 0.85 border lc rgb '#333333'
set boxwidth 0.6
unset key
basis = nepochs > 2 ? sprintf('epochs 2–%d (epoch 1 is warm-up)', nepochs) \
      : nepochs == 2 ? 'epoch 2 (epoch 1 is warm-up)' : 'epoch 1 (the only one)'

do for [fmt in formats] {
    eval term_cmd(fmt)
    set output out_path(fmt)
    set title sprintf("Training throughput per mode — run %s\n{/*0.85 samples/s over %s; labels: samples/s and speedup over fp32}", run_name, basis) font ',14'
    plot data using 0:(column('samples_per_s')):(mode_color(strcol(1))):xtic(1) \
            with boxes lc rgb variable, \
         data using 0:(column('samples_per_s')):(sprintf('%.0f/s', column('samples_per_s'))) \
            with labels offset 0,2.0 font ',11', \
         data using 0:(column('samples_per_s')):(strcol('speedup_label')) \
            with labels offset 0,0.9 font ',11' noenhanced
    set output
}

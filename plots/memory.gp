# Peak memory per mode as bars stacked by category (weights, low-precision copies, gradients,
# activations, optimizer state, workspace), in MiB, each labelled with the overall peak and the
# saving against fp32. Each category is stacked at its own peak (these peaks coincide in the
# seed network, which allocates everything up front). Reads RUN_DIR/plots/memory.csv, which
# `ampbench report` derives from run.json (mode,peak_bytes,change_label,<one column per category>).
# Usage: gnuplot -c plots/memory.gp RUN_DIR  ->  RUN_DIR/plots/memory.png, .svg
plotname = 'memory'
W = 1200
H = 650
rundir = ARG1
plotsdir = ARG0[1:strlen(ARG0)-strlen('memory.gp')]
load plotsdir.'style.gp'
data = derived_dir.'/memory.csv'
MiB = 1048576.0

stats data using (column('peak_bytes')) nooutput
nbars = STATS_records
W = W > 560 + 110 * nbars ? W : 560 + 110 * nbars   # room for each bar's label
ymax = STATS_max / MiB
# Category titles: the CSV names with '_' as spaces, and what the two less obvious ones hold.
underscores(s) = strstrt(s, '_') ? s[1:strstrt(s, '_')-1].' '.underscores(s[strstrt(s, '_')+1:]) : s
cat_title(s) = s eq 'weights' ? 'weights (FP32 masters; FP16 in fp16-pure)' \
    : s eq 'weight_copies' ? 'low-precision weight copies' \
    : s eq 'optimizer' ? 'optimizer state (momentum)' : underscores(s)
# A colour per category, from a palette distinct from the mode colours.
array cat_colors[8] = [0x4e79a7, 0xedc948, 0xf28e2b, 0x59a14f, 0x8cd17d, 0xb07aa1, 0x9c755f, 0xbab0ac]

set style data histograms
set style histogram rowstacked
set style fill solid 0.9 border lc rgb '#333333'
set boxwidth 0.6
set xrange [-0.6:nbars-0.4]
set yrange [0:ymax*1.22]
set ylabel 'peak memory (MiB = 2²⁰ bytes)'
set xlabel 'mode'
set xtics scale 0 noenhanced
set grid noxtics ytics
set key outside right top vertical Left reverse noenhanced samplen 2 spacing 1.2 title 'category (each at its peak)'

do for [fmt in formats] {
    eval term_cmd(fmt)
    set output out_path(fmt)
    set title sprintf("Peak memory per mode by category — run %s\n{/*0.85 labels: overall peak, and change against fp32's peak}", run_name) font ',14'
    plot for [i=4:*] data using (column(i)/MiB):xtic(1) \
            title cat_title(columnhead(i)) lc rgb cat_colors[(i-4)%8+1], \
         data using 0:(column('peak_bytes')/MiB):(sprintf('%.2f MiB', column('peak_bytes')/MiB)) \
            with labels offset 0,2.0 font ',11' notitle, \
         data using 0:(column('peak_bytes')/MiB):(strcol('change_label')) \
            with labels offset 0,0.9 font ',11' notitle noenhanced
    set output
}

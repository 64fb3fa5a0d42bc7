# The bench's speedup over fp32 against batch size, one line per mode, one panel per channel
# count (1 = as fast as fp32). Reads RUN_DIR/bench.csv and the per-channel line files
# RUN_DIR/plots/bench_lines_c<channels>.csv that ampbench bench derives from it.
# Usage: gnuplot -c plots/bench_speedup.gp RUN_DIR -> RUN_DIR/plots/bench_speedup.png, .svg
rundir = ARG1
if (strlen(rundir) == 0) { print "usage: gnuplot -c plots/bench_speedup.gp BENCH_DIR"; exit status 2 }
csv = rundir.'/bench.csv'
set datafile separator comma
set datafile columnheaders
mode_color(m) = m eq 'fp32' ? 0x000000 : m eq 'tf32' ? 0x8c564b : m eq 'amp' ? 0x1f77b4 \
    : m eq 'amp-static' ? 0x17becf : m eq 'amp-noscale' ? 0xff7f0e : m eq 'bf16' ? 0x2ca02c \
    : m eq 'fp16-pure' ? 0xd62728 : 0x9467bd
modes = ''
chans = ''
stats csv using (m_ = strcol(1), c_ = strcol(3), \
    strstrt(' '.modes.' ', ' '.m_.' ') == 0 ? (modes = modes.' '.m_, 0) : 0, \
    strstrt(' '.chans.' ', ' '.c_.' ') == 0 ? (chans = chans.' '.c_, 0) : 0) nooutput
npanels = words(chans)
do for [fmt in 'png svg'] {
    if (fmt eq 'png') { set terminal pngcairo size 560*npanels+80,560 enhanced font 'DejaVu Sans,11' background rgb 'white' }
    if (fmt eq 'svg') { set terminal svg size 560*npanels+80,560 enhanced font 'DejaVu Sans,11' background rgb 'white' }
    set output (exists('imagedir') ? imagedir : rundir.'/plots').'/bench_speedup.'.fmt
    set multiplot layout 1,npanels title "Speedup over fp32 vs batch size (samples/s ratio; above 1 is faster)" font ',14'
    do for [c in chans] {
        set title sprintf('conv channels %s', c)
        set logscale x 2
        unset logscale y
        set xlabel 'batch size (samples)'
        set ylabel 'speedup over fp32 (x)'
        set grid
        set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05
        set key top left noenhanced
        lines = sprintf('%s/plots/bench_lines_c%s.csv', rundir, c)
        plot for [i=0:words(modes)-1] lines index i using 'batch':'speedup' \
            with linespoints lw 2 pt 7 lc rgb mode_color(word(modes, i+1)) title word(modes, i+1), \
            1 with lines dt 2 lc rgb '#888888' notitle
    }
    unset multiplot
    set output
}

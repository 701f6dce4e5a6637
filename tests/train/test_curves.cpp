// curves.svg's value axes: round 1-2-5 ticks covering the data, never below zero for non-negative data.
#include <doctest/doctest.h>

#include "train/curves.h"

using namespace mpncov;

TEST_SUITE("unit") {

TEST_CASE("curves: axes tick at 1-2-5 steps and stop at zero for losses and errors") {
  struct Case {
    double lo, hi;
    std::vector<double> ticks;
  };
  const std::vector<Case> cases = {
      {0.187, 7.68, {0, 2, 4, 6, 8}},         // a loss: no tick below zero
      {12.5, 97.0, {0, 20, 40, 60, 80, 100}},  // an error in %
      {0.5, 0.9, {0.5, 0.6, 0.7, 0.8, 0.9}},
      {-3.0, 2.0, {-3, -2, -1, 0, 1, 2}},       // negative data keeps its negative ticks
      {2.31, 2.31, {2, 2.2, 2.4, 2.6}},        // one value: a window around it
      {0, 0, {0, 0.2, 0.4, 0.6, 0.8, 1}},
  };
  for (const Case& c : cases) {
    INFO(c.lo, " .. ", c.hi);
    const Axis a = nice_axis(c.lo, c.hi);
    const std::vector<double> t = a.ticks();
    REQUIRE(t.size() == c.ticks.size());
    for (size_t i = 0; i < t.size(); ++i) CHECK(t[i] == doctest::Approx(c.ticks[i]));
    CHECK(a.lo <= c.lo);
    CHECK(a.hi >= c.hi);
  }
}

TEST_CASE("curves: the svg labels its axes with the round ticks") {
  EpochMetrics m;
  m.epoch = 1;
  m.train_loss = 7.68;
  m.val_loss = 0.187;
  m.train_top1 = m.train_top5 = m.val_top1 = m.val_top5 = 50;
  EpochMetrics m2 = m;
  m2.epoch = 2;
  const std::string svg = curves_svg({m, m2}, "t");
  CHECK(svg.find(">8</text>") != std::string::npos);
  CHECK(svg.find(">-") == std::string::npos);  // no negative tick label
  CHECK(svg.find("7.68</text>") == std::string::npos);
  // The title (the net and the experiment's path) is escaped: a raw & or < makes the file invalid XML.
  const std::string escaped = curves_svg({m}, "small_cnn: runs/R&D <old>/exp.yaml");
  CHECK(escaped.find(">small_cnn: runs/R&amp;D &lt;old&gt;/exp.yaml</text>") != std::string::npos);
}

}  // TEST_SUITE

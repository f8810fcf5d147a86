"""``python -m realfake.smoke prepare OUT``: models, data sets and the overlay for ``make paper-smoke``;
``python -m realfake.smoke report RUN``: per-rule time and peak memory from a run's benchmarks/."""

import argparse


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m realfake.smoke", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="build the full-size random models and the data sets")
    prepare.add_argument("out", help="folder for models/, data/ and overlay.yaml")
    prepare.add_argument("--paper-config", default="config/paper.yaml")
    report = commands.add_parser("report", help="per-rule seconds and peak memory of a finished run")
    report.add_argument("run", help="the run's working directory (holding benchmarks/)")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        from realfake.smoke.overlay import prepare as prepare_smoke

        print(prepare_smoke(args.out, args.paper_config))
    else:
        from realfake.smoke.report import rule_table

        print(rule_table(args.run).to_markdown(index=False))


if __name__ == "__main__":
    main()

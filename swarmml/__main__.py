from swarmml.cli import main

main()

from modelharbor.cli import main

main()
